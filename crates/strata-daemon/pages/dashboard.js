// The dashboard: polls /api/stats each second and turns counter deltas into rates.
"use strict";
(() => {
  const S = Strata;
  let last = null;
  const NS = "http://www.w3.org/2000/svg";

  // A Sankey of the node, object store → NVMe → DRAM → consumers, with link widths
  // proportional to the current rates: misses come from the store through memory (and fill
  // the NVMe tier behind), NVMe hits are read into memory, and consumers get all of it plus
  // the DRAM hits.
  function sankey(up, fill, nvme, dram) {
    const W = 760, H = 240, out = up + nvme + dram, max = Math.max(out, fill, 1);
    const w = (r) => 2 + 56 * r / max;
    // A node's label sits above it, clear of the links that enter and leave it.
    const node = (x, y, h, label) =>
      `<rect x="${x}" y="${y}" width="16" height="${h}" fill="#1d2733"/>` +
      `<text x="${x + 8}" y="${y - 7}" text-anchor="${x < 40 ? "start" : x > W - 60 ? "end" : "middle"}" font-size="13">${label}</text>`;
    const link = (x1, y1, x2, y2, width, color, id, label) =>
      `<path id="${id}" d="M${x1},${y1} C${(x1 + x2) / 2},${y1} ${(x1 + x2) / 2},${y2} ${x2},${y2}" stroke="${color}" stroke-opacity=".55" stroke-width="${width}" fill="none"><title>${label}</title></path>` +
      `<text x="${(x1 + x2) / 2}" y="${(y1 + y2) / 2 - width / 2 - 4}" text-anchor="middle" font-size="12">${label}</text>`;
    const share = out > 0 ? ` (${S.pct(dram / out)} DRAM hits)` : "";
    return `<svg xmlns="${NS}" viewBox="0 0 ${W} ${H}" role="img" aria-label="data flow">` +
      link(36, 60, 480, 60, w(up), "#1f6feb", "flow-upstream", "misses " + S.rate(up)) +
      link(36, 95, 250, 185, w(fill), "#6e7781", "flow-fill", "fill " + S.rate(fill)) +
      link(266, 185, 480, 100, w(nvme), "#2a8f4a", "flow-nvme", "NVMe hits " + S.rate(nvme)) +
      link(496, 80, 724, 80, w(out), "#9a6700", "flow-out", S.rate(out) + share) +
      node(20, 30, 80, "object store") + node(250, 160, 50, "NVMe") +
      node(480, 30, 100, "DRAM") + node(724, 30, 100, "consumers") + `</svg>`;
  }

  function ratio(t) {
    const n = t.hits + t.misses;
    return n ? t.hits / n : null;
  }

  function render(s, dt) {
    const d = (f) => last ? Math.max(0, (f(s) - f(last)) / dt) : 0;
    const up = d((x) => x.upstream.bytes);
    const nv = d((x) => x.nvme ? x.nvme.bytes_read : 0);
    const dr = d((x) => x.dram ? x.dram.bytes_read : 0);
    const fill = d((x) => x.nvme ? x.nvme.bytes_written : 0);
    S.el("sankey").innerHTML = sankey(up, fill, nv, dr);
    S.text("rate-upstream", S.rate(up));
    S.text("rate-nvme", S.rate(nv));
    S.text("rate-dram", S.rate(dr));
    S.text("hit-dram", s.dram ? S.pct(ratio(s.dram)) : "off");
    S.text("hit-nvme", s.nvme ? S.pct(ratio(s.nvme)) : "off");
    S.text("prefetch", String(s.prefetch_queue));
    S.text("memory", S.bytes(s.response_memory.used) + " of " + S.bytes(s.response_memory.capacity));
    S.text("upstream-total", S.bytes(s.upstream.bytes));
    const rows = [["DRAM", s.dram], ["NVMe", s.nvme]].filter((r) => r[1]).map(([n, t]) =>
      `<tr><td>${n}</td><td>${S.bytes(t.used)}</td><td>${S.bytes(t.capacity)}</td><td>${t.hits}</td><td>${t.misses}</td>` +
      `<td>${S.bytes(t.bytes_read)}</td><td>${S.bytes(t.bytes_written)}</td><td>${t.evictions}</td></tr>`);
    document.querySelector("#tiers tbody").innerHTML = rows.join("");
    const esc = (x) => String(x).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
    const jobs = s.jobs.filter((j) => j.report.wait_secs !== null || j.report.compute_secs !== null);
    S.el("jobs").innerHTML = jobs.length ? jobs.map((j) => {
      const w = j.report.wait_secs || 0, c = j.report.compute_secs || 0, t = Math.max(w + c, 1e-9);
      return `<tr class="job"><td>${esc(j.name)}</td><td style="width:55%"><div class="bar">` +
        `<i class="wait" style="width:${100 * w / t}%"></i><i class="compute" style="width:${100 * c / t}%"></i></div></td>` +
        `<td>AU ${S.pct(c / t)}</td><td class="muted">wait ${S.secs(w)} · compute ${S.secs(c)}` +
        (j.report.requests != null ? ` · ${j.report.requests} reads, ${S.bytes(j.report.bytes_read || 0)}` : "") +
        `</td></tr>`;
    }).join("") : `<tr><td class="muted">no jobs have reported in the last minute</td></tr>`;
    const drains = s.jobs.filter((j) => j.report.drain_total);
    S.el("drains").innerHTML = drains.length ? drains.map((j) => {
      const f = j.report.drain_done / j.report.drain_total;
      return `<tr class="drain-row"><td>${esc(j.name)}</td><td style="width:55%"><div class="bar"><i class="drain" style="width:${100 * f}%"></i></div></td>` +
        `<td>${S.bytes(j.report.drain_done)} of ${S.bytes(j.report.drain_total)}</td></tr>`;
    }).join("") : `<tr><td class="muted">no drains</td></tr>`;
  }

  async function tick() {
    try {
      const t = performance.now();
      const s = await Strata.api("/api/stats");
      s._t = t;
      render(s, last ? (t - last._t) / 1000 : 1);
      last = s;
      S.text("status", "live · up " + S.secs(s.uptime_secs));
    } catch (e) {
      S.text("status", "disconnected: " + e.message);
    }
  }
  tick();
  setInterval(tick, 1000);
})();
