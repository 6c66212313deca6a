/**
 * Money arrives as integer fen (`*_fen`) and is shown as "¥1,234.56".
 * Only string and integer operations: no float ever touches an amount.
 */
function toDigits(fen) {
  if (typeof fen === 'number') {
    if (!Number.isSafeInteger(fen)) throw new TypeError('金额应为整数分：' + fen)
    return String(fen)
  }
  if (typeof fen === 'string' && /^-?\d+$/.test(fen)) return fen
  if (typeof fen === 'bigint') return fen.toString()
  throw new TypeError('金额应为整数分：' + fen)
}

function groupThousands(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',')
}

/** 123456 → "¥1,234.56"; -5 → "-¥0.05"; null/undefined → "—". */
function formatFen(fen, { symbol = '¥' } = {}) {
  if (fen === null || fen === undefined || fen === '') return '—'
  let digits = toDigits(fen)
  const negative = digits[0] === '-'
  if (negative) digits = digits.slice(1)
  digits = digits.replace(/^0+(?=\d)/, '').padStart(3, '0')
  const yuan = groupThousands(digits.slice(0, -2))
  const cents = digits.slice(-2)
  const text = symbol + yuan + '.' + cents
  return negative && /[1-9]/.test(digits) ? '-' + text : text
}

/** What a person typed in yuan ("1,234.5", "12") → integer fen, or null when it is not an amount. */
function parseYuan(text) {
  const cleaned = String(text === undefined || text === null ? '' : text).trim().replace(/[,，\s]/g, '').replace(/^¥/, '')
  const match = /^(\d{1,12})(?:\.(\d{0,2}))?$/.exec(cleaned)
  if (!match) return null
  const cents = (match[2] || '').padEnd(2, '0')
  return parseInt(match[1] + cents, 10)
}

/** Basis points → "1.5%" (3000 → "30%"). */
function formatRate(bp) {
  if (bp === null || bp === undefined) return '—'
  const digits = toDigits(bp).padStart(3, '0')
  const whole = digits.slice(0, -2).replace(/^0+(?=\d)/, '')
  const frac = digits.slice(-2).replace(/0+$/, '')
  return whole + (frac ? '.' + frac : '') + '%'
}

module.exports = { formatFen, parseYuan, formatRate }
