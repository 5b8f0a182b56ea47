// Registration: fill in the municipality from the postal code (progressive
// enhancement; the form works the same without this script). The lookup is our
// own endpoint over Japan Post's data shipped with the server: nothing leaves
// for another site. A municipality the resident typed is never overwritten.
(function () {
  "use strict";

  function start() {
    var status = document.getElementById("postal-lookup");
    var code = document.getElementById("postal_code");
    var locality = document.getElementById("locality");
    if (!status || !code || !locality || !window.fetch) {
      return;
    }
    var filled = "";
    var asked = "";

    function digits(value) {
      var text = value.normalize ? value.normalize("NFKC") : value;
      return text.replace(/[\s〒\-‐‑‒–—―−ーｰ]/g, "");
    }

    function lookup() {
      var wanted = digits(code.value);
      if (!/^[0-9]{7}$/.test(wanted) || wanted === asked) {
        return;
      }
      asked = wanted;
      if (locality.value && locality.value !== filled) {
        return; // typed by the resident
      }
      fetch(status.getAttribute("data-url") + "?code=" + encodeURIComponent(wanted), {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      })
        .then(function (response) {
          return response.ok ? response.json() : null;
        })
        .then(function (place) {
          if (digits(code.value) !== wanted) {
            return; // the code changed meanwhile
          }
          if (place && place.locality) {
            locality.value = place.locality;
            filled = place.locality;
            status.textContent = status.getAttribute("data-filled");
          } else {
            status.textContent = status.getAttribute("data-unknown");
          }
        })
        .catch(function () {
          status.textContent = "";
        });
    }

    code.addEventListener("input", lookup);
    code.addEventListener("change", lookup);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
