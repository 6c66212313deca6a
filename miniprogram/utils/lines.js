/** Priced lines (cart, preview, order) for templates: amounts as text, each line's problems beside it. */
const { formatFen } = require('./money')
const { priceReason } = require('./format')

function byLine(problems) {
  const mine = {}
  const general = []
  ;(problems || []).forEach((p) => {
    if (p.sku_id) (mine[p.sku_id] = mine[p.sku_id] || []).push(p.message)
    else general.push(p.message)
  })
  return { mine, general }
}

function shapeLines(lines, problems, rules) {
  const { mine, general } = byLine(problems)
  return {
    lines: lines.map((line) => Object.assign({}, line, rules ? rules[line.sku_id] : {}, {
      unit: line.unit,
      unit_price_text: formatFen(line.unit_price_fen),
      amount_text: formatFen(line.amount_fen),
      price_reason: priceReason(line),
      problems: mine[line.sku_id] || [],
    })),
    general,
  }
}

function totalsText(totals) {
  const out = {}
  Object.keys(totals || {}).forEach((k) => {
    out[k.replace(/_fen$/, '_text')] = formatFen(totals[k])
  })
  return out
}

module.exports = { shapeLines, totalsText, byLine }
