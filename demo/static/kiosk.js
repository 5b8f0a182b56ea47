// Demo signage kiosk (demo/kiosk.py): wait for the resident's approval without reloading.
// Asks /status.json every `interval` seconds and counts down to the code's expiry once a
// second. When the state changes (signed in, a new code after expiry or a refusal), the
// page's <main> is fetched again and swapped in place. Without this script the page
// reloads itself instead (<noscript><meta http-equiv=refresh>).
(function () {
  "use strict";

  let timer = null;
  let ticker = null;

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  function startCountdown() {
    clearInterval(ticker);
    const el = document.getElementById("countdown");
    if (!el) {
      return;
    }
    const deadline = Date.now() + Number(el.dataset.expiresIn) * 1000;
    const tick = function () {
      const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      el.textContent = left > 0
        ? el.dataset.template.replace("{m}", Math.floor(left / 60)).replace("{s}", pad(left % 60))
        : el.dataset.expired;
    };
    tick();
    ticker = setInterval(tick, 1000);
  }

  async function swapMain() {
    const response = await fetch(window.location.href, {headers: {Accept: "text/html"}});
    const html = await response.text();
    const next = new DOMParser().parseFromString(html, "text/html").querySelector("main");
    const main = document.querySelector("main");
    if (next && main) {
      main.replaceWith(next);
    }
    startCountdown();
  }

  function schedule(seconds) {
    clearTimeout(timer);
    timer = setTimeout(check, Math.max(1, seconds) * 1000);
  }

  async function check() {
    const main = document.querySelector("main");
    if (!main || main.dataset.state === "signed_in") {
      return; // signed in: the touch buttons post forms as before
    }
    let interval = 5;
    try {
      const response = await fetch("status.json", {headers: {Accept: "application/json"}});
      const status = await response.json();
      interval = status.interval || interval;
      if (status.state !== main.dataset.state || (status.code || "") !== main.dataset.code) {
        await swapMain();
      }
    } catch (error) {
      // The IdP or this kiosk's server is unreachable for now: try again later.
    }
    schedule(interval);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const note = document.getElementById("poll-note");
    startCountdown();
    schedule(note ? Number(note.dataset.interval) : 5);
  });
})();
