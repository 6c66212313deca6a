/** Display helpers shared by pages (times in China, labels, roles). */
const { formatFen } = require('./money')

const CHINA_OFFSET_MS = 8 * 3600 * 1000

function pad(n) {
  return (n < 10 ? '0' : '') + n
}

/** ISO 8601 (UTC or with offset) → "2026-12-01 10:00" in China time; a date "2026-12-01" stays. */
function chinaTime(iso) {
  if (!iso) return ''
  if (/^\d{4}-\d{2}-\d{2}$/.test(iso)) return iso
  const t = Date.parse(/[zZ]|[+-]\d{2}:?\d{2}$/.test(iso) ? iso : iso + 'Z')
  if (Number.isNaN(t)) return String(iso)
  const d = new Date(t + CHINA_OFFSET_MS)
  return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' + pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes())
}

/** Today's date in China as YYYY-MM-DD. */
function chinaToday(now) {
  const d = new Date((now === undefined ? Date.now() : now) + CHINA_OFFSET_MS)
  return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate())
}

const STOCK_LABELS = { in_stock: '有货', low: '库存紧张', out: '缺货' }
const PRICE_SOURCE_LABELS = { dealer: '专属价', tier: '等级价', list: '目录价' }
const ROLE_LABELS = { owner: '负责人', buyer: '采购员', viewer: '只读' }
const PAYMENT_METHODS = [
  { value: 'credit', label: '信用额度（账期）' },
  { value: 'prepaid', label: '预付款' },
  { value: 'wechat', label: '微信支付' },
  { value: 'offline', label: '线下转账' },
]

/** "按《鑫达专属价》第 1 版" — why this price, from a priced line. */
function priceReason(line) {
  const source = PRICE_SOURCE_LABELS[line.price_source] || ''
  if (line.price_list_name) return source + ' · 按《' + line.price_list_name + '》第 ' + line.price_list_version + ' 版'
  return source
}

function product(p) {
  return Object.assign({}, p, {
    price_text: formatFen(p.price_fen),
    list_price_text: formatFen(p.list_price_fen),
    stock_label: STOCK_LABELS[p.stock && p.stock.level] || '',
    stock_level: (p.stock && p.stock.level) || '',
    source_label: PRICE_SOURCE_LABELS[p.price_source] || '',
  })
}

module.exports = { chinaTime, chinaToday, STOCK_LABELS, PRICE_SOURCE_LABELS, ROLE_LABELS, PAYMENT_METHODS, priceReason, product }
