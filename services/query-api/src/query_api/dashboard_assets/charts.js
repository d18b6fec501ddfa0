/* Small inline-SVG charts for the dashboard: lines over time, vertical and horizontal bars.
   No dependencies; every chart redraws its <svg> from scratch (they hold a few hundred points). */
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#1f6feb", "#d2691e", "#2e8b57", "#8a4baf", "#c0362c", "#6b7785"];
  const PAD = { left: 44, right: 8, top: 8, bottom: 22 };

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function size(svg) {
    const box = svg.viewBox.baseVal;
    return { w: box.width, h: box.height };
  }

  /* A round upper bound for an axis: 1, 2 or 5 times a power of ten at or above `max`. */
  function niceMax(max) {
    if (!(max > 0)) return 1;
    const step = Math.pow(10, Math.floor(Math.log10(max)));
    for (const m of [1, 2, 5, 10]) if (m * step >= max) return m * step;
    return 10 * step;
  }

  function short(v) {
    const a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
    if (a >= 1e3) return (v / 1e3).toFixed(a >= 1e4 ? 0 : 1) + "k";
    if (a > 0 && a < 1) return v.toFixed(2);
    return String(Math.round(v * 10) / 10);
  }

  function axes(svg, top, bottom) {
    const { w, h } = size(svg);
    const plotH = h - PAD.top - PAD.bottom;
    for (let i = 0; i <= 2; i++) {
      const value = bottom + ((top - bottom) * i) / 2;
      const y = PAD.top + plotH - (plotH * i) / 2;
      svg.appendChild(el("line", { class: "grid", x1: PAD.left, x2: w - PAD.right, y1: y, y2: y }));
      svg.appendChild(el("text", { x: PAD.left - 4, y: y + 3, "text-anchor": "end" }, short(value)));
    }
  }

  function empty(svg, message) {
    const { w, h } = size(svg);
    svg.appendChild(el("text", { x: w / 2, y: h / 2, "text-anchor": "middle" }, message));
  }

  /* series: [{name, values: [number|null, ...]}], the same length, oldest first. */
  function lines(svg, series, opts) {
    svg.replaceChildren();
    const { w, h } = size(svg);
    const n = Math.max(0, ...series.map((s) => s.values.length));
    const all = series.flatMap((s) => s.values.filter((v) => v !== null && isFinite(v)));
    if (!all.length) { empty(svg, (opts && opts.empty) || "no data yet"); return; }
    const top = niceMax(Math.max(...all));
    axes(svg, top, 0);
    const plotW = w - PAD.left - PAD.right, plotH = h - PAD.top - PAD.bottom;
    const x = (i) => PAD.left + (n <= 1 ? plotW : (plotW * i) / (n - 1));
    const y = (v) => PAD.top + plotH - (plotH * Math.min(v, top)) / top;
    series.forEach((s, k) => {
      const color = PALETTE[k % PALETTE.length];
      let d = "", pen = false;
      s.values.forEach((v, i) => {
        if (v === null || !isFinite(v)) { pen = false; return; }
        d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1);
        pen = true;
      });
      if (d) svg.appendChild(el("path", { class: "series", d, stroke: color, "data-series": s.name }));
      const slot = (w - PAD.left) / series.length;  // the legend: one slot per series
      svg.appendChild(el("rect", { x: PAD.left + k * slot, y: h - 12, width: 8, height: 8, fill: color }));
      svg.appendChild(el("text", { x: PAD.left + 11 + k * slot, y: h - 4 },
        s.name.slice(0, Math.max(3, Math.floor((slot - 14) / 5.5)))));
    });
  }

  /* items: [{label, value}], left to right. */
  function bars(svg, items, opts) {
    svg.replaceChildren();
    const { w, h } = size(svg);
    if (!items.length) { empty(svg, (opts && opts.empty) || "no data yet"); return; }
    const values = items.map((d) => d.value);
    const top = niceMax(Math.max(0, ...values)), bottom = -niceMax(-Math.min(0, ...values)) || 0;
    axes(svg, top, bottom);
    const plotW = w - PAD.left - PAD.right, plotH = h - PAD.top - PAD.bottom;
    const y = (v) => PAD.top + plotH - (plotH * (v - bottom)) / (top - bottom);
    if (bottom < 0) {  // negative windows (more cancelled than sold): mark zero
      svg.appendChild(el("line", { class: "grid zero", x1: PAD.left, x2: w - PAD.right, y1: y(0), y2: y(0) }));
      svg.appendChild(el("text", { x: PAD.left - 4, y: y(0) + 3, "text-anchor": "end" }, "0"));
    }
    const slot = plotW / items.length, every = Math.ceil(items.length / 12);
    items.forEach((d, i) => {
      const y0 = y(0), y1 = y(d.value);
      svg.appendChild(el("rect", {
        x: PAD.left + i * slot + slot * 0.15, width: Math.max(1, slot * 0.7),
        y: Math.min(y0, y1), height: Math.max(1, Math.abs(y1 - y0)),
        fill: d.value < 0 ? "#c0362c" : PALETTE[0], "data-label": d.label, "data-value": d.value,
      }));
      if (i % every === 0) {
        svg.appendChild(el("text", { x: PAD.left + i * slot + slot / 2, y: h - 6, "text-anchor": "middle" }, d.label));
      }
    });
  }

  /* items: [{label, value}], top to bottom. */
  function hbars(svg, items, opts) {
    svg.replaceChildren();
    const { w, h } = size(svg);
    if (!items.length) { empty(svg, (opts && opts.empty) || "no data yet"); return; }
    const top = niceMax(Math.max(...items.map((d) => d.value)));
    const left = 80, row = Math.min(28, (h - 8) / items.length);
    items.forEach((d, i) => {
      const width = ((w - left - 50) * Math.max(0, d.value)) / top;
      const yy = 4 + i * row;
      svg.appendChild(el("text", { x: left - 6, y: yy + row * 0.6, "text-anchor": "end" }, d.label));
      svg.appendChild(el("rect", { x: left, y: yy + row * 0.15, width: Math.max(1, width), height: row * 0.7,
        fill: PALETTE[i % PALETTE.length], "data-label": d.label, "data-value": d.value }));
      svg.appendChild(el("text", { x: left + width + 4, y: yy + row * 0.6 }, short(d.value)));
    });
  }

  return { lines, bars, hbars, PALETTE };
})();
