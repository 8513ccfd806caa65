// The workbench: every figure comes from POST /api/plan (the Rust planner), /api/probe and
// /api/personas. The page only maps sliders to knobs and draws what comes back.
"use strict";
(() => {
  const S = Strata;
  let scenario = null;      // TOML text; null = the daemon's default
  let touched = {};         // knobs the user moved, sent as overrides
  let locked = null;        // the locked prediction (a factor), or null
  let last = null;          // the last plan response
  let pending = null;
  const said = {};          // lesson key → the answer the user locked
  let iterations = 0;       // replans the sizing sliders caused (the seeds' 10-iteration rule)
  let balancedAt = null;    // the iteration that first reached the target
  let sizingMoved = false;
  const LESSONS = ["audit", "sizing", "checkpoint"];
  const LOCK = { audit: "lock", sizing: "lock-sizing", checkpoint: "lock-checkpoint" };
  const esc = (x) => String(x).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");

  // Slider position ↔ quantity. Log scales, so one slider spans decades.
  const scales = {
    buffer: { to: (v) => Math.pow(2, v), unit: "MiB", fmt: (x) => S.bytes(x * 1048576) },
    download: { to: (v) => 0.1 * Math.pow(10, v / 25), unit: "Gbps", fmt: (x) => x.toPrecision(3) + " Gbit/s" },
    nvme: { to: (v) => 0.1 * Math.pow(10, v / 33.3), unit: "GB/s", fmt: (x) => x.toPrecision(3) + " GB/s" },
    interval: { to: (v) => Math.pow(10, v / 25), unit: "min", fmt: (x) => S.secs(x * 60) },
    mtbf: { to: (v) => Math.pow(10, v / 25), unit: "d", fmt: (x) => x.toPrecision(3) + " days" },
  };
  const from = {
    buffer: (bytes) => Math.log2(bytes / 1048576),
    download: (bps) => 25 * Math.log10(bps * 8 / 1e9 / 0.1),
    nvme: (bps) => 33.3 * Math.log10(bps / 1e9 / 0.1),
    interval: (s) => 25 * Math.log10(s / 60),
    mtbf: (s) => 25 * Math.log10(s / 86400),
  };
  const knob = { buffer: "buffer", download: "download", nvme: "nvme_bandwidth", interval: "checkpoint_interval", mtbf: "node_mtbf" };

  function showValue(id) {
    const sc = scales[id];
    S.text(id + "-v", sc.fmt(sc.to(+S.el(id).value)));
  }
  function quantity(id) {
    const sc = scales[id];
    // Plain decimals: toPrecision alone writes large numbers as 1.000e+4.
    return String(Number(sc.to(+S.el(id).value).toPrecision(4))) + " " + sc.unit;
  }

  function error(e) { S.text("error", e ? String(e.message || e) : ""); }

  async function replan() {
    const body = { overrides: touched };
    if (scenario) body.scenario = scenario;
    const mine = pending = S.api("/api/plan", body);
    try {
      const r = await mine;
      if (mine !== pending) return;  // a newer request is on its way
      error(null);
      last = r;
      if (sizingMoved && r.plan.pipeline) {
        sizingMoved = false;
        iterations++;
        const target = r.plan.scenario.accelerators.target || 0.95;
        if (balancedAt === null && r.plan.pipeline.utilization >= target) balancedAt = iterations;
      }
      render(r);
    } catch (e) {
      if (mine === pending) error(e);
    }
  }
  let timer = null;
  const soon = () => { clearTimeout(timer); timer = setTimeout(replan, 120); };

  function setSlider(id, v) {
    if (!isFinite(v)) return;
    const e = S.el(id);
    e.value = Math.min(+e.max, Math.max(+e.min, v));
    showValue(id);
  }

  function render(r) {
    const p = r.plan, sc = p.scenario, svg = r.svgs || {};
    S.text("scenario-name", sc.name);
    S.text("plan-text", r.text);
    // Sliders follow the scenario unless the user moved them.
    const src = sc.tiers.find((t) => t.kind === "object" || t.kind === "file");
    const nv = sc.tiers.find((t) => t.kind === "nvme");
    if (!touched.buffer) setSlider("buffer", from.buffer(sc.pipeline.buffer));
    if (!touched.download && src) setSlider("download", from.download(src.read_bandwidth));
    if (!touched.nvme_bandwidth && nv) setSlider("nvme", from.nvme(nv.read_bandwidth));
    if (sc.checkpoint) {
      if (!touched.checkpoint_interval) setSlider("interval", from.interval(sc.checkpoint.interval || p.checkpoint.direct.recommended));
      if (!touched.node_mtbf) setSlider("mtbf", from.mtbf(sc.checkpoint.node_mtbf));
    }
    if (sc.dataset) {
      S.el("layout").value = sc.dataset.layout;
      S.el("shuffle").value = sc.dataset.shuffle;
    }
    for (const id of ["sizing", "audit"]) S.el(id).style.opacity = p.pipeline ? 1 : 0.5;
    S.el("checkpoint").style.opacity = p.checkpoint ? 1 : 0.5;
    const pl = p.pipeline;
    if (pl) {
      const u = S.el("util");
      u.textContent = S.pct(pl.utilization);
      u.className = "gauge " + (pl.utilization >= (sc.accelerators.target || 0.95) ? "high" : "low");
      S.el("flow-gauge").style.width = (100 * Math.min(1, pl.utilization)) + "%";
      S.text("bottleneck", "Bottleneck: " + pl.bottleneck + ". Demand " + S.rate(pl.node_demand) +
        " per node; delivered " + S.rate(pl.node_bytes_per_sec) + ".");
      S.el("saturation").innerHTML = svg.saturation || "";
      S.el("flow").innerHTML = svg.sankey || "";
      S.el("audit-waterfall").innerHTML = svg.waterfall || "";
      showAudit();
    } else {
      S.text("audit-result", "This scenario has no data pipeline to audit.");
      S.text("util", "–");
      S.text("bottleneck", "This scenario has no [dataset] and [accelerators]: nothing to size.");
      for (const id of ["saturation", "flow", "audit-waterfall"]) S.el(id).innerHTML = "";
    }
    const c = p.checkpoint;
    if (c) {
      S.el("young-daly").innerHTML = svg["young-daly"] || "";
      const best = c.staged || c.direct;
      const row = (st) => `<tr><td>${st.name}</td><td>${S.secs(st.stall)}</td><td>${S.secs(st.young)}</td><td>${S.secs(st.daly)}</td>` +
        `<td>${S.pct(st.waste)}</td><td>${st.interval_waste === null ? "–" : S.pct(st.interval_waste)}</td></tr>`;
      S.el("ckpt-result").innerHTML =
        `<p>The storm: all ${sc.checkpoint.nodes} nodes at once take <b id="storm">${S.secs(c.storm_secs)}</b> per checkpoint; the job fails every ${S.secs(c.job_mtbf)}.</p>` +
        `<table><thead><tr><th>strategy</th><th>stall</th><th>Young</th><th>Daly</th><th>waste at Daly</th><th>waste at your interval</th></tr></thead>` +
        `<tbody>${row(c.direct)}${c.staged ? row(c.staged) : ""}</tbody></table>` +
        `<p>Waste at your interval: <b id="interval-waste">${S.pct(best.interval_waste)}</b> (${best.name}).</p>`;
    } else {
      S.el("young-daly").innerHTML = "";
      S.el("ckpt-result").innerHTML = `<p class="muted">This scenario has no [checkpoint].</p>`;
    }
    math(p);
    lessons();
    ledger();
  }

  function lesson(key) {
    return last && (last.plan.lessons || []).find((l) => l.key === key);
  }

  // Each part's question and, once locked, the planner's answer for the settings as they are.
  function lessons() {
    for (const key of LESSONS) {
      const l = lesson(key), sel = S.el("choice-" + key);
      S.text("q-" + key, l ? l.question : "This scenario has nothing to ask here.");
      const choices = l ? l.choices : [];
      if ([...sel.options].map((o) => o.value).join("|") !== choices.join("|")) {
        sel.innerHTML = `<option value="">choose…</option>` +
          choices.map((c) => `<option value="${esc(c)}">${esc(c)}</option>`).join("");
        if (said[key]) sel.value = said[key];
      }
      // Nothing to ask, or already locked: nothing to choose.
      const closed = !l || said[key] !== undefined;
      sel.disabled = closed;
      S.el(LOCK[key]).disabled = closed;
      if (key === "audit") {
        S.el("prediction").disabled = closed;
        continue;  // the answer shows with the I/O wall, by showAudit
      }
      const out = S.el("answer-" + key);
      out.innerHTML = !l ? "" : said[key] === undefined ? "Lock your prediction to see the planner's answer." :
        verdict(key, l) + " " + esc(l.because);
    }
    S.text("iterations", !last || !last.plan.pipeline ? "" :
      `Iterations: ${iterations}. ` + (balancedAt !== null
        ? `You reached the target utilization after ${balancedAt} (${balancedAt <= 10 ? "within" : "beyond"} the 10-iteration rule).`
        : `Find settings that reach the target utilization within 10 moves of the sliders.`));
  }

  // ✓ or ✗: the locked answer against the planner's.
  function mark(mine, answer) {
    const ok = mine === answer;
    return `<span class="${ok ? "right" : "wrong"}">${ok ? "✓" : "✗"}</span>`;
  }

  function verdict(key, l) {
    return `You said <b>${esc(said[key])}</b>; the planner says <b id="planner-${key}">${esc(l.answer)}</b> ` +
      mark(said[key], l.answer) + ".";
  }

  function lockLesson(key, button) {
    const v = S.el("choice-" + key).value;
    if (!v) { error("choose an answer before locking it"); return false; }
    error(null);
    said[key] = v;
    S.el("choice-" + key).disabled = true;
    S.el(button).disabled = true;
    S.el(button).closest(".lock-box").classList.add("locked");
    return true;
  }

  // The ledger: the three predictions against the planner, where the settings ended, the
  // planner's strategy, and the command that plans the same on the command line.
  const FLAGS = { download: "download", nvme_bandwidth: "nvme-bandwidth", buffer: "buffer",
    cache_size: "cache-size", layout: "layout", shuffle: "shuffle",
    checkpoint_interval: "checkpoint-interval", write_bandwidth: "write-bandwidth", node_mtbf: "node-mtbf" };
  function ledger() {
    const p = last.plan, rows = [];
    for (const key of LESSONS) {
      const l = lesson(key);
      if (!l) continue;
      const mine = said[key];
      rows.push(`<tr class="ledger-row"><td>${esc(l.question)}</td><td>${mine ? esc(mine) : "<span class=muted>not locked</span>"}</td>` +
        `<td>${mine ? `${esc(l.answer)} ${mark(mine, l.answer)}` : "<span class=muted>lock to see</span>"}</td></tr>`);
    }
    document.querySelector("#ledger tbody").innerHTML = rows.join("");
    const fin = [];
    if (p.pipeline) fin.push(`Utilization <b id="ledger-util">${S.pct(p.pipeline.utilization)}</b> (bottleneck: ${esc(p.pipeline.bottleneck)})`);
    if (p.checkpoint) {
      const best = p.checkpoint.staged || p.checkpoint.direct;
      fin.push(`checkpoints ${esc(best.name)}, stall ${S.secs(best.stall)}, waste ${S.pct(best.interval_waste === null ? best.waste : best.interval_waste)}`);
    }
    S.el("ledger-final").innerHTML = fin.length ? "Where you ended: " + fin.join("; ") + "." : "";
    const r = p.recommendation;
    S.el("strategy").innerHTML = `<p>The planner's strategy: <b id="strategy-choice">${esc(r.choice)}</b>.</p><ul>` +
      r.reasons.map((x) => `<li>${esc(x)}</li>`).join("") + `</ul>`;
    const q = (v) => /^[A-Za-z0-9._\/-]+$/.test(v) ? v : "'" + v.replace(/'/g, "'\\''") + "'";
    S.text("command", ["strata plan scenario.toml"].concat(Object.keys(touched).filter((k) => FLAGS[k])
      .map((k) => `--${FLAGS[k]} ${q(touched[k])}`)).join(" \\\n    "));
    S.text("ledger-scenario", last.scenario_text);
    const a = S.el("save-scenario");
    if (a.dataset.text !== last.scenario_text) {
      if (a.href.startsWith("blob:")) URL.revokeObjectURL(a.href);
      a.href = URL.createObjectURL(new Blob([last.scenario_text], { type: "application/toml" }));
      a.dataset.text = last.scenario_text;
    }
  }

  function showAudit() {
    const pl = last && last.plan.pipeline;
    if (!pl) return;
    const w = pl.io_wall;
    if (locked === null) {
      S.el("audit-result").innerHTML = `Lock a prediction to see the planner's answer.`;
      return;
    }
    const off = Math.max(locked, w.factor) / Math.min(locked, w.factor);
    const l = lesson("audit");
    S.el("audit-result").innerHTML = (l ? verdict("audit", l) + " " + esc(l.because) + "<br>" : "") +
      `You predicted <b>${locked}×</b>. The planner says <b id="wall-factor">${w.factor.toFixed(1)}×</b>: ` +
      `an epoch takes ${S.secs(w.sequential_epoch_secs)} reading shards in order and ${S.secs(w.shuffled_epoch_secs)} ` +
      `one sample at a time at random (${S.rate(w.sequential_bytes_per_sec)} against ${S.rate(w.shuffled_bytes_per_sec)}). ` +
      (off < 1.5 ? "Close." : `Off by ${off.toFixed(1)}×.`);
  }

  function math(p) {
    const sc = p.scenario, parts = [];
    if (p.pipeline && sc.accelerators && sc.dataset) {
      const a = sc.accelerators;
      parts.push(`<p><b>The pipeline equation</b>: demand per node = accelerators × batch × sample size / step time = ` +
        `${a.per_node} × ${a.batch} × ${S.bytes(sc.dataset.sample_size)} / ${S.secs(a.step_time)} = <b>${S.rate(p.pipeline.node_demand)}</b>. ` +
        `Every stage must move at least that:</p><table><tr><th>stage</th><th>tier</th><th>required</th><th>available</th></tr>` +
        p.pipeline.stages.map((s) => `<tr><td>${s.role}</td><td>${s.tier}</td><td>${S.rate(s.required)}</td><td>${S.rate(s.available)}</td></tr>`).join("") +
        `</table>`);
    }
    if (p.checkpoint) {
      const d = p.checkpoint.direct, M = p.checkpoint.job_mtbf;
      parts.push(`<p><b>Young–Daly</b>: with checkpoint cost δ = ${S.secs(d.stall)} and job MTBF M = ${S.secs(M)}, ` +
        `Young's interval √(2δM) = ${S.secs(d.young)}; Daly's √(2δM)·[1 + ⅓√(δ/2M) + (δ/2M)/9] − δ = ${S.secs(d.daly)}.</p>`);
    }
    S.el("math-body").innerHTML = parts.join("") || `<p class="muted">Nothing to show for this scenario.</p>`;
  }

  async function loadPersona(key) {
    const panel = S.el("persona-panel");
    // A persona is a new track: its own predictions, its own iterations.
    touched = {};
    iterations = 0;
    balancedAt = null;
    locked = null;
    for (const k of LESSONS) delete said[k];
    for (const b of document.querySelectorAll(".lock-box")) b.classList.remove("locked");
    // The selects the user set follow the new scenario again.
    S.el("write-bw").value = "";
    if (last) { showAudit(); lessons(); ledger(); }
    if (!key) { panel.hidden = true; scenario = null; return replan(); }
    try {
      const r = await S.api("/api/personas/" + encodeURIComponent(key));
      const p = r.persona;
      panel.hidden = false;
      S.text("persona-title", p.title + " · " + p.role);
      S.text("persona-crisis", p.crisis);
      const list = (id, items) => { S.el(id).innerHTML = ""; for (const t of items) { const li = document.createElement("li"); li.textContent = t; S.el(id).appendChild(li); } };
      list("persona-findings", p.findings);
      list("persona-answer", p.answer);
      list("persona-assumptions", p.assumptions);
      // A persona that is a budget, not a scenario, leaves the scenario as it was, without
      // the overrides (they were the last track's).
      if (r.scenario) scenario = r.scenario;
      await replan();
      S.text("persona-note", r.scenario ? "The lab below plans this persona's scenario." :
        `This persona is a device budget, answered above; the lab below keeps the scenario “${last ? last.plan.scenario.name : ""}”.`);
      error(null);
    } catch (e) { error(e); }
  }

  for (const id of Object.keys(scales)) {
    S.el(id).addEventListener("input", () => {
      showValue(id);
      touched[knob[id]] = quantity(id);
      if (id === "buffer" || id === "download" || id === "nvme") sizingMoved = true;
      soon();
    });
  }
  S.el("write-bw").addEventListener("change", (e) => {
    if (e.target.value) touched.write_bandwidth = e.target.value; else delete touched.write_bandwidth;
    soon();
  });
  S.el("layout").addEventListener("change", (e) => { touched.layout = e.target.value; soon(); });
  S.el("shuffle").addEventListener("change", (e) => { touched.shuffle = e.target.value; soon(); });
  S.el("persona").addEventListener("change", (e) => loadPersona(e.target.value));
  S.el("lock").addEventListener("click", () => {
    const v = +S.el("prediction").value;
    if (!(v > 0)) { error("a prediction is a number > 0"); return; }
    if (!lockLesson("audit", "lock")) return;
    locked = v;
    S.el("prediction").disabled = true;
    S.el("lock").disabled = true;
    S.el("predict-box").classList.add("locked");
    showAudit();
  });
  for (const key of ["sizing", "checkpoint"]) {
    S.el("lock-" + key).addEventListener("click", () => { if (lockLesson(key, "lock-" + key)) lessons(), ledger(); });
  }
  S.el("balance").addEventListener("click", () => {
    const z = last && last.plan.sizing;
    if (!z || z.pick === null) { S.text("balance-result", z ? z.reason : "This scenario has nothing to size."); return; }
    const t = z.options[z.pick];
    S.el("balance-result").innerHTML = `Balanced: NVMe cache <b>${S.bytes(t.cache)}</b> (${S.pct(t.cache_fraction)} of the data), ` +
      `download <b>${t.download ? S.rate(t.download) : "–"}</b>, buffer <b>${t.buffer ? S.bytes(t.buffer) : "–"}</b>, ` +
      `utilization ${S.pct(t.utilization)}. ${z.reason} Applied to the sliders.`;
    touched.cache_size = t.cache.toFixed(0) + " B";
    if (t.download) { touched.download = String(Number((t.download * 8 / 1e9).toPrecision(4))) + " Gbps"; setSlider("download", from.download(t.download)); }
    if (t.buffer) { touched.buffer = Math.max(t.buffer, 1048576).toFixed(0) + " B"; setSlider("buffer", from.buffer(t.buffer)); }
    soon();
  });
  S.el("probe").addEventListener("click", async () => {
    const b = S.el("probe");
    b.disabled = true;
    S.text("probe-result", "probing the cache directory's device…");
    try {
      const r = await S.api("/api/probe", {});
      const rep = r.report;
      S.el("probe-result").innerHTML = `<pre id="probe-table"></pre>`;
      S.text("probe-table", r.text);
      S.el("probe-plot").innerHTML = r.svg;
    } catch (e) { S.text("probe-result", "probe failed: " + e.message); }
    b.disabled = false;
  });
  replan();
})();
