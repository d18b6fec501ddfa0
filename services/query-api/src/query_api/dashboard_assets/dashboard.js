/* The dashboard: business figures from the API's own /v1 endpoints and the pipeline's health,
   refreshed live. The API key comes from the address's fragment (#key=...), which the browser
   never sends to a server, and goes to the API as X-API-Key. Every figure shown carries its raw
   value in a data-value attribute (and a stable id or data- key), for tests and scripts. */
"use strict";

(() => {
  const PIPELINE_EVERY_MS = 3000;   // the live panel: lag and throughput move by the second
  const BUSINESS_EVERY_MS = 15000;  // reports are recomputed every minutes; no need to hammer
  const HISTORY = 60;               // points per pipeline chart: 3 minutes at 3 s
  const SALES_WINDOWS = 24;         // the newest windows in the sales chart
  const LOW_STOCK_LIMIT = 1000;     // the endpoint's largest page

  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const key = params.get("key");
  const $ = (id) => document.getElementById(id);
  const history = new Map();  // service -> {lag: [], throughput: [], p99: [], dlq: []}
  const timers = [];

  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }

  async function api(path) {
    const response = await fetch(path, { headers: { "X-API-Key": key, Accept: "application/json" } });
    if (!response.ok) {
      let detail = response.status + " " + response.statusText;
      try {
        const problem = await response.json();
        detail = problem.detail || problem.title || detail;
      } catch (_) { /* not a problem document: keep the status line */ }
      throw new ApiError(response.status, detail);
    }
    return response.json();
  }

  function setState(state, text) {
    document.body.dataset.state = state;
    $("status").textContent = text;
  }

  function refused(error) {
    if (!(error instanceof ApiError) || (error.status !== 401 && error.status !== 403)) return false;
    timers.forEach(clearInterval);
    $("panels").hidden = true;
    $("key-refused").hidden = false;
    $("key-refused-detail").textContent = "The API refused the key in this page's address: " + error.message;
    setState("key-refused", "key refused");
    return true;
  }

  function panelError(id, error) {
    const node = $(id);
    node.hidden = error === null;
    node.textContent = error === null ? "" : "not available: " + error.message;
  }

  function cell(text, field, value) {
    const td = document.createElement("td");
    td.textContent = text;
    if (field) td.dataset.field = field;
    if (value !== undefined && value !== null) td.dataset.value = String(value);
    return td;
  }

  function row(attrs, cells) {
    const tr = document.createElement("tr");
    for (const [k, v] of Object.entries(attrs)) tr.dataset[k] = String(v);
    cells.forEach((c) => tr.appendChild(c));
    return tr;
  }

  function figure(id, value, text) {
    const node = $(id);
    node.dataset.value = String(value);
    node.textContent = text === undefined ? String(value) : text;
  }

  const num = (v) => (v === null || v === undefined ? null : Number(v));
  const money = (v) => Number(v).toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const count = (v) => Number(v).toLocaleString("en");
  const fixed = (v, d) => (v === null ? "-" : Number(v).toFixed(d));
  const hhmm = (iso) => { const t = new Date(iso); return isNaN(t) ? String(iso) : t.toISOString().slice(11, 16); };

  // -- pipeline ------------------------------------------------------------------------------

  function remember(service) {
    if (!history.has(service.name)) history.set(service.name, { lag: [], throughput: [], p99: [], dlq: [] });
    const h = history.get(service.name);
    const push = (list, v) => { list.push(v); if (list.length > HISTORY) list.shift(); };
    push(h.lag, num(service.lag));
    push(h.throughput, num(service.throughput_per_s));
    push(h.p99, num(service.p99_latency_s));
    push(h.dlq, num(service.dead_letters));
  }

  function renderPipeline(data) {
    $("pipeline-window").textContent = "(throughput and p99 over the last " + data.window_seconds + " s)";
    const body = $("pipeline-table").tBodies[0];
    body.replaceChildren();
    data.services.forEach((s, i) => {
      remember(s);
      const name = cell("", null);
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = Charts.PALETTE[i % Charts.PALETTE.length];
      name.append(swatch, s.name);
      const ready = cell(s.up ? (s.ready ? "yes" : "no") : "down", "ready", s.up && s.ready);
      ready.className = s.up && s.ready ? "yes" : "no";
      if (s.error) ready.title = s.error;
      body.appendChild(row({ service: s.name, up: s.up }, [
        name,
        ready,
        cell(s.lag === null ? "-" : count(s.lag), "lag", s.lag),
        cell(fixed(s.throughput_per_s, 1), "throughput_per_s", s.throughput_per_s),
        cell(s.p99_latency_s === null ? "-" : fixed(s.p99_latency_s, 2) + " s", "p99_latency_s", s.p99_latency_s),
        cell(s.dead_letters === null ? "-" : count(s.dead_letters), "dead_letters", s.dead_letters),
      ]));
    });
    const names = data.services.map((s) => s.name);
    const series = (field) => names.map((name) => ({ name, values: history.get(name)[field] }));
    Charts.lines($("chart-lag"), series("lag"));
    Charts.lines($("chart-throughput"), series("throughput"), { empty: "after two scrapes" });
    Charts.lines($("chart-p99"), series("p99"), { empty: "nothing written yet" });
    Charts.lines($("chart-dlq"), series("dlq"));
    document.body.dataset.pipelineAt = data.scraped_at;
  }

  async function refreshPipeline() {
    try {
      renderPipeline(await api("/v1/pipeline"));
      panelError("pipeline-error", null);
    } catch (error) {
      if (!refused(error)) panelError("pipeline-error", error);
    }
  }

  // -- business figures ----------------------------------------------------------------------

  function renderSales(page) {
    const rows = page.rows.slice(-SALES_WINDOWS);
    $("sales-windows").textContent = String(rows.length);
    let orders = 0, revenue = 0;
    for (const r of page.rows) { orders += Number(r.net_orders); revenue += Number(r.net_revenue); }
    figure("sales-total-orders", orders, count(orders));
    figure("sales-total-revenue", revenue.toFixed(2), money(revenue));
    Charts.bars($("chart-sales"), rows.map((r) => ({ label: hhmm(r.window_start), value: Number(r.net_revenue) })),
      { empty: "no window reported yet" });
    const svg = $("chart-sales");
    svg.dataset.windows = String(rows.length);
  }

  function renderTop(page) {
    const body = $("top-products").tBodies[0];
    body.replaceChildren(...page.rows.map((r) => row({ topProduct: r.product_id }, [
      cell("#" + r.product_id, "product_id", r.product_id),
      cell(count(r.units), "units", r.units),
      cell(money(r.revenue), "revenue", r.revenue),
    ])));
  }

  function renderStatus(page) {
    const totals = new Map();
    for (const r of page.rows) totals.set(r.status, (totals.get(r.status) || 0) + Number(r.net_orders));
    const items = [...totals.entries()].filter(([, v]) => v !== 0).sort((a, b) => b[1] - a[1])
      .map(([label, value]) => ({ label, value }));
    Charts.hbars($("chart-status"), items, { empty: "no orders reported yet" });
    $("status-table").tBodies[0].replaceChildren(...items.map((d) => row({ status: d.label }, [
      cell(d.label, "status"), cell(count(d.value), "orders", d.value),
    ])));
  }

  function renderLowStock(page) {
    const items = page.items;
    figure("low-stock-count", items.length, items.length >= LOW_STOCK_LIMIT ? count(items.length) + "+" : count(items.length));
    $("low-stock").tBodies[0].replaceChildren(...items.slice(0, 15).map((p) => row({ lowStockProduct: p.product_id }, [
      cell(p.name ? p.name + " (#" + p.product_id + ")" : "#" + p.product_id, "product_id", p.product_id),
      cell(count(p.stock), "stock", p.stock),
    ])));
  }

  const BUSINESS = [
    ["/v1/lake/reports/window_summary", renderSales, "sales-error"],
    ["/v1/lake/reports/top_products", renderTop, "top-error"],
    ["/v1/lake/reports/status_distribution", renderStatus, "status-error"],
    ["/v1/stats/low-stock?limit=" + LOW_STOCK_LIMIT, renderLowStock, "low-stock-error"],
  ];

  async function refreshBusiness() {
    await Promise.all(BUSINESS.map(async ([path, render, errorId]) => {
      try {
        render(await api(path));
        panelError(errorId, null);
      } catch (error) {
        if (!refused(error)) panelError(errorId, error);
      }
    }));
    document.body.dataset.businessAt = new Date().toISOString();
  }

  async function start() {
    if (!key) {
      $("no-key").hidden = false;
      setState("no-key", "no API key in the address");
      return;
    }
    $("panels").hidden = false;
    await Promise.all([refreshPipeline(), refreshBusiness()]);
    if (document.body.dataset.state === "key-refused") return;
    setState("ok", "live: pipeline every " + PIPELINE_EVERY_MS / 1000 + " s, reports every " + BUSINESS_EVERY_MS / 1000 + " s");
    timers.push(setInterval(refreshPipeline, PIPELINE_EVERY_MS), setInterval(refreshBusiness, BUSINESS_EVERY_MS));
  }

  window.addEventListener("hashchange", () => location.reload());
  start();
})();
