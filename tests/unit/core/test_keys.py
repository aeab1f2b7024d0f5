"""The pure key rules: scope order, key parsing, hashing, expiry, revocation, grace."""

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ctxfy.core.errors import MalformedKeyError
from ctxfy.core.keys import (
    KEY_ID_ALPHABET,
    KEY_ID_LENGTH,
    KEY_PATTERN,
    SECRET_ALPHABET,
    SECRET_LENGTH,
    ApiKey,
    KeyOutcome,
    KeyRecord,
    Scope,
    check_key,
    hash_secret,
    secret_matches,
)

key_ids = st.text(KEY_ID_ALPHABET, min_size=KEY_ID_LENGTH, max_size=KEY_ID_LENGTH)
secrets_ = st.text(SECRET_ALPHABET, min_size=SECRET_LENGTH, max_size=SECRET_LENGTH)
api_keys = st.builds(ApiKey, key_ids, secrets_)
scopes = st.sampled_from(Scope)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
deltas = st.timedeltas(min_value=timedelta(seconds=-(10**6)), max_value=timedelta(seconds=10**6))
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def record_for(key: ApiKey, **changes: Any) -> KeyRecord:
    base = KeyRecord(
        key_id=key.key_id,
        name="ci",
        scope=Scope.READ,
        secret_hash=hash_secret(key.key_id, key.secret),
        created_at=T0,
    )
    return attrs.evolve(base, **changes)


# --- scopes -----------------------------------------------------------------------------


@given(scopes, scopes)
def test_scope_includes_exactly_the_scopes_at_or_below_it(a: Scope, b: Scope) -> None:
    order = [Scope.READ, Scope.WRITE, Scope.ADMIN]
    assert a.includes(b) == (order.index(a) >= order.index(b))
    assert (b.value in a.expanded()) == a.includes(b)
    assert (a < b) == (order.index(a) < order.index(b))


@given(scopes, scopes, scopes)
def test_scope_inclusion_is_transitive(a: Scope, b: Scope, c: Scope) -> None:
    if a.includes(b) and b.includes(c):
        assert a.includes(c)


def test_admin_expands_to_every_scope_and_read_to_itself() -> None:
    assert Scope.ADMIN.expanded() == ("read", "write", "admin")
    assert Scope.WRITE.expanded() == ("read", "write")
    assert Scope.READ.expanded() == ("read",)
    assert max(Scope) is Scope.ADMIN


@pytest.mark.parametrize("text", ["", "READ", "root", " read", "write "])
def test_scope_parse_rejects_anything_but_the_three_names(text: str) -> None:
    with pytest.raises(ValueError, match="read, write or admin"):
        Scope.parse(text)


# --- key text ---------------------------------------------------------------------------


@given(api_keys)
def test_key_text_parses_back_to_the_same_key(key: ApiKey) -> None:
    assert key.text.startswith(f"ctxfy_{key.key_id}_")
    assert ApiKey.parse(key.text) == key


@given(api_keys)
def test_repr_and_redacted_form_never_contain_the_secret(key: ApiKey) -> None:
    assert key.secret not in repr(key)
    assert key.secret not in key.redacted
    assert key.key_id in key.redacted


@given(st.text(max_size=200))
def test_arbitrary_text_is_rejected_without_being_echoed(text: str) -> None:
    assume(not text.startswith("ctxfy_"))
    with pytest.raises(MalformedKeyError) as info:
        ApiKey.parse(text)
    if len(text) > 3:
        assert text not in str(info.value)


@given(api_keys, st.data())
def test_one_foreign_character_anywhere_makes_the_key_malformed(
    key: ApiKey, data: st.DataObject
) -> None:
    text = key.text
    position = data.draw(st.integers(0, len(text) - 1))
    bad = data.draw(st.sampled_from(["-", " ", "é", "\x00", "/", "+", "=", "_", "."]))
    assume(text[position] != bad)
    mutated = text[:position] + bad + text[position + 1 :]
    with pytest.raises(MalformedKeyError):
        ApiKey.parse(mutated)


@given(api_keys, st.integers(1, 5))
def test_keys_with_extra_or_missing_characters_are_malformed(key: ApiKey, n: int) -> None:
    for text in (key.text + "a" * n, key.text[:-n], " " + key.text, key.text.upper()):
        with pytest.raises(MalformedKeyError):
            ApiKey.parse(text)


def test_very_long_text_is_rejected() -> None:
    with pytest.raises(MalformedKeyError):
        ApiKey.parse("ctxfy_" + "a" * 100_000)


# --- hashing ----------------------------------------------------------------------------


@given(api_keys, secrets_)
def test_only_the_right_secret_matches_the_stored_hash(key: ApiKey, other: str) -> None:
    stored = hash_secret(key.key_id, key.secret)
    assert stored.startswith("sha256:")
    assert key.secret not in stored
    assert secret_matches(key.key_id, key.secret, stored)
    assert secret_matches(key.key_id, other, stored) == (other == key.secret)


@given(api_keys, key_ids)
def test_the_hash_is_bound_to_the_key_id(key: ApiKey, other_id: str) -> None:
    assume(other_id != key.key_id)
    assert not secret_matches(other_id, key.secret, hash_secret(key.key_id, key.secret))


# --- records ----------------------------------------------------------------------------


def test_record_rejects_naive_times_bad_names_and_foreign_hashes() -> None:
    key = ApiKey("a" * 12, "B" * 43)
    with pytest.raises(ValueError, match="timezone-aware"):
        record_for(key, expires_at=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="printable"):
        record_for(key, name="  ")
    with pytest.raises(ValueError, match="printable"):
        record_for(key, name="bad\nname")
    with pytest.raises(ValueError, match="sha256"):
        record_for(key, secret_hash="md5:abc")
    assert "sha256" not in repr(record_for(key))


# --- the check rule ---------------------------------------------------------------------


@given(api_keys, times)
def test_unknown_key_id_is_unknown(key: ApiKey, now: datetime) -> None:
    assert check_key(None, key, now).outcome is KeyOutcome.UNKNOWN


@given(api_keys, secrets_, times)
def test_wrong_secret_is_refused_whatever_the_state(key: ApiKey, other: str, now: datetime) -> None:
    assume(other != key.secret)
    verdict = check_key(record_for(key), ApiKey(key.key_id, other), now)
    assert verdict.outcome is KeyOutcome.BAD_SECRET
    assert verdict.record is None
    assert not verdict.ok


@given(api_keys, deltas, deltas)
def test_expiry_is_exclusive_at_the_instant(
    key: ApiKey, lifetime: timedelta, age: timedelta
) -> None:
    expires = T0 + lifetime
    verdict = check_key(record_for(key, expires_at=expires), key, T0 + age)
    assert verdict.ok == (T0 + age < expires)
    if not verdict.ok:
        assert verdict.reason == "expired"


@given(api_keys, deltas, deltas)
def test_revocation_applies_from_its_instant(key: ApiKey, at: timedelta, age: timedelta) -> None:
    verdict = check_key(record_for(key, revoked_at=T0 + at), key, T0 + age)
    assert verdict.outcome is (KeyOutcome.REVOKED if age >= at else KeyOutcome.OK)


@given(api_keys, deltas, deltas)
def test_rotated_key_works_until_grace_ends(key: ApiKey, grace: timedelta, age: timedelta) -> None:
    record = record_for(key, grace_until=T0 + grace, replaced_by="b" * 12)
    verdict = check_key(record, key, T0 + age)
    assert verdict.outcome is (KeyOutcome.ROTATED_OUT if age >= grace else KeyOutcome.OK)
    assert record.status(T0 + age) == ("rotated" if age >= grace else "rotating")


@given(api_keys, times)
def test_revoked_beats_rotated_beats_expired(key: ApiKey, now: datetime) -> None:
    past = now - timedelta(seconds=1)
    all_three = record_for(key, revoked_at=past, grace_until=past, expires_at=past)
    assert check_key(all_three, key, now).reason == "revoked"
    assert check_key(attrs.evolve(all_three, revoked_at=None), key, now).reason == "rotated_out"
    no_grace = attrs.evolve(all_three, revoked_at=None, grace_until=None)
    assert check_key(no_grace, key, now).reason == "expired"


@given(api_keys, times)
def test_a_valid_key_returns_its_record(key: ApiKey, now: datetime) -> None:
    record = record_for(key, scope=Scope.ADMIN)
    verdict = check_key(record, key, now)
    assert verdict.ok
    assert verdict.reason == "ok"
    assert verdict.record == record
    assert record.status(now) == "active"


def test_stops_at_is_the_earlier_of_expiry_and_grace() -> None:
    key = ApiKey("a" * 12, "B" * 43)
    assert record_for(key).stops_at() is None
    soon, later = T0 + timedelta(hours=1), T0 + timedelta(days=1)
    assert record_for(key, expires_at=later, grace_until=soon).stops_at() == soon
    assert record_for(key, expires_at=soon).stops_at() == soon


# --- finding leaked keys ----------------------------------------------------------------


@given(api_keys, st.text(max_size=20), st.text(max_size=20))
def test_key_pattern_finds_every_key_inside_other_text_but_not_its_redacted_form(
    key: ApiKey, before: str, after: str
) -> None:
    found = KEY_PATTERN.search(before + key.text + after)
    assert found is not None
    assert found.group() == key.text
    assert KEY_PATTERN.search(before + key.redacted + after) is None
    assert KEY_PATTERN.search(hash_secret(key.key_id, key.secret)) is None
