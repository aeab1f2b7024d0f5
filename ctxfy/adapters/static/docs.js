// ctxfy's /docs page: Swagger UI from the openapi-ui-bundles package, with no request to
// any host but this server (the page's Content-Security-Policy enforces it).
(function () {
  "use strict";

  var form = document.getElementById("ctxfy-key-form");
  var keyInput = document.getElementById("ctxfy-key");
  var message = document.getElementById("ctxfy-key-message");

  function start(spec, key) {
    var ui = SwaggerUIBundle({
      spec: spec,
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      displayRequestDuration: true,
      persistAuthorization: false,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
    });
    if (key) {
      ui.preauthorizeApiKey("apiKeyAuth", key);
    }
    window.ui = ui;
  }

  function askForKey(text) {
    message.textContent = text;
    form.hidden = false;
    keyInput.focus();
  }

  function load(key) {
    var headers = key ? { "X-API-Key": key } : {};
    fetch("openapi.json", { headers: headers, credentials: "omit", cache: "no-store" })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          askForKey(
            key
              ? "That key was refused. Give a key with the read scope."
              : "This server requires an API key to read its API description."
          );
          return null;
        }
        if (!response.ok) {
          throw new Error("the API description answered HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (spec) {
        if (spec) {
          form.hidden = true;
          start(spec, key);
        }
      })
      .catch(function (error) {
        askForKey("Could not load the API description: " + error.message);
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    load(keyInput.value.trim());
  });
  load("");
})();
