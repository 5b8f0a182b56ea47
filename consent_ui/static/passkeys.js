/* Passkeys (WebAuthn) for Machi ID: the only script that calls navigator.credentials.
 *
 * Served from /static under the site's CSP (script-src 'self'); no inline script.
 * Buttons carry what the script needs in data- attributes:
 *   data-passkey="signin"    options/finish URLs, the pending interaction and next;
 *   data-passkey="register"  options/finish URLs; its form holds the password and name.
 * Where the browser supports it, the login page's address field also offers passkeys
 * in its autofill (conditional mediation, autocomplete="username webauthn").
 */
(function () {
  "use strict";

  function toBytes(value) {
    var base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function csrfToken() {
    var field = document.querySelector('input[name="csrf_token"]');
    return field ? field.value : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    });
  }

  function creationOptions(options) {
    options.challenge = toBytes(options.challenge);
    options.user.id = toBytes(options.user.id);
    (options.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return options;
  }

  function requestOptions(options) {
    options.challenge = toBytes(options.challenge);
    (options.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return options;
  }

  function credentialJSON(credential) {
    var response = credential.response;
    var json = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: toBase64url(response.clientDataJSON) }
    };
    if (response.attestationObject) {
      json.response.attestationObject = toBase64url(response.attestationObject);
      json.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      json.response.authenticatorData = toBase64url(response.authenticatorData);
      json.response.signature = toBase64url(response.signature);
      if (response.userHandle) { json.response.userHandle = toBase64url(response.userHandle); }
    }
    return json;
  }

  function status(container, message) {
    var box = container.querySelector("[data-passkey-status]") ||
      document.querySelector("[data-passkey-status]");
    if (!box) { return; }
    box.textContent = message;
    box.hidden = !message;
  }

  // WebAuthn refuses an IP address as the relying party id: a server reached as
  // 127.0.0.1 (the demo's default issuer) cannot offer passkeys; use a host name
  // (e.g. IDP_ISSUER=http://localhost:5000) to try them locally.
  var ipHost = /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\])$/.test(location.hostname) ||
    location.hostname.indexOf(":") !== -1;
  var supported = !!(window.PublicKeyCredential && navigator.credentials) && !ipHost;
  var pending = null;  // the AbortController of a conditional (autofill) request

  function signIn(button, mediation) {
    if (pending) { pending.abort(); pending = null; }
    var controller = new AbortController();
    if (mediation === "conditional") { pending = controller; }
    var container = button.closest("section") || document;
    return post(button.dataset.optionsUrl).then(function (started) {
      if (!started.ok) { throw new Error(started.data.message || button.dataset.failed); }
      var request = { publicKey: requestOptions(started.data.options), signal: controller.signal };
      if (mediation) { request.mediation = mediation; }
      return navigator.credentials.get(request).then(function (credential) {
        return post(button.dataset.finishUrl, {
          challenge: started.data.challenge,
          credential: credentialJSON(credential),
          interaction: button.dataset.interaction || null,
          next: button.dataset.next || null
        });
      });
    }).then(function (finished) {
      if (finished.ok && finished.data.redirect) {
        window.location.assign(finished.data.redirect);
        return;
      }
      status(container, finished.data.message || button.dataset.failed);
    }).catch(function (error) {
      if (error && error.name === "AbortError") { return; }
      if (mediation === "conditional") { return; }  // the resident may still click
      status(container, (error && error.message && error.name === "Error") ?
        error.message : button.dataset.failed);
    });
  }

  function register(button) {
    var form = button.closest("form");
    var container = form || document;
    var password = form ? form.querySelector('input[name="password"]') : null;
    var name = form ? form.querySelector('input[name="name"]') : null;
    status(container, "");
    if (pending) { pending.abort(); pending = null; }
    post(button.dataset.optionsUrl, { password: password ? password.value : "" })
      .then(function (started) {
        if (!started.ok) { throw new Error(started.data.message || button.dataset.failed); }
        return navigator.credentials.create({ publicKey: creationOptions(started.data.options) })
          .then(function (credential) {
            return post(button.dataset.finishUrl, {
              challenge: started.data.challenge,
              credential: credentialJSON(credential),
              name: name ? name.value : ""
            });
          });
      }).then(function (finished) {
        if (finished.ok && finished.data.redirect) {
          window.location.assign(finished.data.redirect);
          return;
        }
        status(container, finished.data.message || button.dataset.failed);
      }).catch(function (error) {
        status(container, (error && error.name === "Error" && error.message) ?
          error.message : button.dataset.failed);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll('[data-passkey="signin"], [data-passkey="register"]');
    document.querySelectorAll("[data-passkey-unsupported]").forEach(function (hint) {
      hint.hidden = supported;
    });
    buttons.forEach(function (button) {
      if (!supported) { return; }
      button.hidden = false;
      button.addEventListener("click", function (event) {
        event.preventDefault();
        if (button.dataset.passkey === "signin") { signIn(button); } else { register(button); }
      });
    });
    var signInButton = document.querySelector('[data-passkey="signin"]');
    var autofill = document.querySelector('input[autocomplete~="webauthn"]');
    if (supported && signInButton && autofill &&
        PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (available) { signIn(signInButton, "conditional"); }
      }).catch(function () {});
    }
  });
}());
