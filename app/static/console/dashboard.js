// Console dashboard: each <canvas data-url> is drawn with Chart.js from its JSON endpoint.
// Amounts arrive in integer fen and are shown in yuan; other roles get counts or quantities.
// Every value axis and tooltip carries its unit: ¥ / 元 for amounts, 单 for orders, 件 for
// quantities, 家 for dealers, % for rates (basis points in the JSON), 小时 for durations
// (seconds in the JSON). A body with `series` draws one dataset per series key.
(function () {
  "use strict";
  var COLORS = ["#2f6f9f", "#e07b39", "#3c9d5d", "#c9453b", "#8a63b8", "#8c6d31", "#d66fb1", "#7f7f7f", "#b5b02e", "#2bb0c2"];
  var METRIC_LABELS = {amount_fen: "金额（元）", order_count: "订单数（单）", qty: "数量（件）", dealer_count: "经销商（家）",
    coverage_bp: "覆盖率（%）", attainment_bp: "达成率（%）", seconds: "时长（小时）"};
  var UNITS = {order_count: "单", qty: "件", dealer_count: "家"};
  // Metrics sent in another unit than shown: basis points -> %, seconds -> hours.
  var SCALE = {coverage_bp: 100, attainment_bp: 100, seconds: 3600};
  var SUFFIX = {coverage_bp: "%", attainment_bp: "%", seconds: " 小时"};

  function yuan(fen) {
    return "¥" + (fen / 100).toLocaleString("zh-CN", {minimumFractionDigits: 2, maximumFractionDigits: 2});
  }

  // 1234 -> "¥1,234" on an axis (whole yuan, as ticks are round numbers).
  function yuanTick(value) {
    return "¥" + Number(value).toLocaleString("zh-CN", {maximumFractionDigits: 2});
  }

  function shown(metric, value) {
    if (metric === "amount_fen") { return yuan(Math.round(value * 100)); }
    if (SUFFIX[metric]) { return Number(value).toLocaleString("zh-CN", {maximumFractionDigits: 2}) + SUFFIX[metric]; }
    return Number(value).toLocaleString("zh-CN") + " " + (UNITS[metric] || "");
  }

  function scales(kind, metric, money) {
    if (kind === "doughnut") { return {}; }
    var value = {
      beginAtZero: true,
      title: {display: true, text: METRIC_LABELS[metric] || metric},
      ticks: money ? {callback: yuanTick}
        : {precision: SCALE[metric] ? undefined : 0, callback: function (v) { return shown(metric, v); }}
    };
    var category = {title: {display: kind === "line", text: "日期"}};
    return kind === "hbar" ? {x: value, y: category} : {x: category, y: value};
  }

  function draw(canvas, body) {
    var metric = canvas.dataset.metric || body.metric;
    if (metric === "amount_fen" && body.metric !== "amount_fen") { metric = body.metric; }
    var money = metric === "amount_fen";
    function value(item, key) {
      var raw = item[key];
      if (raw === null || raw === undefined) { return null; }
      return money ? raw / 100 : (SCALE[metric] ? raw / SCALE[metric] : raw);
    }
    var values = body.items.map(function (item) { return value(item, metric); });
    var kind = canvas.dataset.chart;
    var datasets = body.series ? body.series.map(function (series, index) {
      return {label: series.label, data: body.items.map(function (item) { return value(item, series.key); }),
              backgroundColor: COLORS[index % COLORS.length]};
    }) : null;
    var config = {
      type: kind === "hbar" ? "bar" : kind,
      data: {
        labels: body.items.map(function (item) { return item.label; }),
        datasets: datasets || [{
          label: METRIC_LABELS[metric] || metric,
          data: values,
          backgroundColor: kind === "line" ? COLORS[0] : COLORS.slice(0, Math.max(values.length, 1)),
          borderColor: COLORS[0],
          fill: false,
          tension: 0.2
        }]
      },
      options: {
        animation: false,
        responsive: true,
        indexAxis: kind === "hbar" ? "y" : "x",
        // Counts and quantities are whole numbers: no 0.5 ticks.
        scales: scales(kind, metric, money),
        plugins: {
          legend: {display: kind === "doughnut" || Boolean(datasets)},
          tooltip: {callbacks: {label: function (ctx) {
            var text = shown(metric, ctx.raw);
            if (datasets) { return ctx.dataset.label + "：" + text; }
            return kind === "doughnut" ? ctx.label + "：" + text : text;
          }}}
        }
      }
    };
    new window.Chart(canvas, config);
    canvas.dataset.rendered = String(body.items.length);
  }

  function load(canvas) {
    fetch(canvas.dataset.url, {headers: {Accept: "application/json"}, credentials: "same-origin"})
      .then(function (resp) {
        return resp.json().then(function (body) {
          if (!resp.ok) { throw new Error((body.error && body.error.message) || resp.statusText); }
          return body;
        });
      })
      .then(function (body) { draw(canvas, body); })
      .catch(function (err) {
        var note = document.createElement("p");
        note.className = "flash error";
        note.textContent = "图表加载失败：" + err.message;
        canvas.replaceWith(note);
      });
  }

  document.querySelectorAll("canvas[data-url]").forEach(load);
}());
