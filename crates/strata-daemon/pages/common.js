// Shared by the pages: the token (given once as ?token=, then kept for this tab), API calls,
// and number formatting.
"use strict";
const Strata = (() => {
  const params = new URLSearchParams(location.search);
  if (params.get("token")) {
    sessionStorage.setItem("strata-token", params.get("token"));
    params.delete("token");
    const q = params.toString();
    history.replaceState(null, "", location.pathname + (q ? "?" + q : ""));
  }
  const token = sessionStorage.getItem("strata-token");
  async function api(path, body) {
    const opts = { method: body === undefined ? "GET" : "POST", headers: {} };
    if (token) opts.headers["Authorization"] = "Bearer " + token;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    const text = await r.text();
    let v;
    try { v = JSON.parse(text); } catch (_) { v = { message: text }; }
    if (!r.ok) throw new Error(v.message || r.statusText);
    return v;
  }
  function bytes(n) {
    if (n === null || n === undefined || !isFinite(n)) return "–";
    const u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 2 : 1)) + " " + u[i];
  }
  const rate = (n) => bytes(n) + "/s";
  function secs(s) {
    if (s === null || s === undefined || !isFinite(s)) return "–";
    if (s < 1) return (s * 1000).toFixed(0) + " ms";
    if (s < 120) return s.toFixed(1) + " s";
    if (s < 7200) return (s / 60).toFixed(1) + " min";
    if (s < 172800) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(1) + " d";
  }
  const pct = (x) => (x === null || x === undefined || !isFinite(x)) ? "–" : (x * 100).toFixed(1) + "%";
  const el = (id) => document.getElementById(id);
  function text(id, v) { const e = el(id); if (e) e.textContent = v; }
  return { api, bytes, rate, secs, pct, el, text };
})();
