"""Reading a JSON-RPC exchange from HTTP bodies, and bounding client-chosen names."""

import json

from ctxfy.core.telemetry import (
    MAX_LOGGED_NAME_LENGTH,
    RpcExchange,
    bounded_name,
    read_rpc_exchange,
)

REQUEST = json.dumps(
    {"jsonrpc": "2.0", "id": 7, "method": "prompts/get", "params": {"name": "prp"}}
).encode()


def error(code: object) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": 7, "error": {"code": code, "message": "no"}}
    ).encode()


def test_a_json_error_answer_gives_its_code_and_the_request_method_and_name() -> None:
    assert read_rpc_exchange(REQUEST, error(-32602), event_stream=False) == RpcExchange(
        method="prompts/get", target="prp", error_code=-32602
    )


def test_the_first_answer_of_an_event_stream_is_read_past_notifications() -> None:
    notification = b'{"jsonrpc": "2.0", "method": "notifications/message", "params": {}}'
    stream = b"event: message\r\ndata: " + notification + b"\r\n\r\n: ping\r\n\r\n"
    stream += b"event: message\r\ndata: " + error(-32601) + b"\r\n\r\n"
    exchange = read_rpc_exchange(REQUEST, stream, event_stream=True)
    assert exchange is not None
    assert exchange.error_code == -32601


def test_a_result_is_a_success() -> None:
    result = b'{"jsonrpc": "2.0", "id": 7, "result": {}}'
    exchange = read_rpc_exchange(b'{"id": 7, "method": "ping"}', result, event_stream=False)
    assert exchange == RpcExchange(method="ping", target=None, error_code=None)


def test_no_answer_in_the_body_gives_nothing() -> None:
    assert read_rpc_exchange(REQUEST, b"", event_stream=False) is None
    assert read_rpc_exchange(REQUEST, b"not json", event_stream=False) is None
    assert read_rpc_exchange(REQUEST, b"event: message\n\n", event_stream=True) is None


def test_an_unread_or_unreadable_request_leaves_the_method_unknown() -> None:
    for request in (None, b"[1, 2]", b"{"):
        exchange = read_rpc_exchange(request, error(-32600), event_stream=False)
        assert exchange == RpcExchange(method=None, target=None, error_code=-32600)


def test_an_error_without_an_integer_code_counts_as_internal() -> None:
    for code in ("x", True, None):
        exchange = read_rpc_exchange(REQUEST, error(code), event_stream=False)
        assert exchange is not None
        assert exchange.error_code == -32603


def test_a_resource_uri_is_the_target() -> None:
    request = b'{"id": 1, "method": "resources/read", "params": {"uri": "res://x"}}'
    exchange = read_rpc_exchange(request, error(-32002), event_stream=False)
    assert exchange is not None
    assert exchange.target == "res://x"


def test_long_names_are_cut_for_the_log() -> None:
    name = "n" * (MAX_LOGGED_NAME_LENGTH + 1)
    assert bounded_name(name) == "n" * MAX_LOGGED_NAME_LENGTH + "..."
    assert bounded_name("n" * MAX_LOGGED_NAME_LENGTH) == "n" * MAX_LOGGED_NAME_LENGTH
