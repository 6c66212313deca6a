const { formatFen, parseYuan, formatRate } = require('../utils/money')

describe('formatFen: integer fen to ¥ with two decimals and thousands', () => {
  test.each([
    [0, '¥0.00'], [5, '¥0.05'], [99, '¥0.99'], [100, '¥1.00'], [123456, '¥1,234.56'],
    [100000000, '¥1,000,000.00'], [-5, '-¥0.05'], [-123456, '-¥1,234.56'], ['123456', '¥1,234.56'],
    [Number.MAX_SAFE_INTEGER, '¥90,071,992,547,409.91'], ['900719925474099123', '¥9,007,199,254,740,991.23'],
  ])('%p → %s', (fen, text) => {
    expect(formatFen(fen)).toBe(text)
  })

  test('nothing to show is a dash, not ¥0.00', () => {
    expect(formatFen(null)).toBe('—')
    expect(formatFen(undefined)).toBe('—')
  })

  test('a float or text that is not whole fen is refused, never rounded', () => {
    expect(() => formatFen(12.5)).toThrow(TypeError)
    expect(() => formatFen('1.5')).toThrow(TypeError)
    expect(() => formatFen(NaN)).toThrow(TypeError)
  })

  test('the famous float trap does not apply: 0.1 + 0.2 yuan is 30 fen', () => {
    expect(formatFen(10 + 20)).toBe('¥0.30')
    expect(formatFen(parseYuan('0.1') + parseYuan('0.2'))).toBe('¥0.30')
  })

  test('without the symbol for input boxes', () => {
    expect(formatFen(123456, { symbol: '' })).toBe('1,234.56')
  })
})

describe('parseYuan: what a dealer typed to fen', () => {
  test.each([
    ['12', 1200], ['12.3', 1230], ['12.34', 1234], ['1,234.56', 123456], ['¥8', 800], [' 0.07 ', 7], ['12.', 1200],
  ])('%p → %p', (text, fen) => {
    expect(parseYuan(text)).toBe(fen)
  })

  test.each(['', 'abc', '1.234', '-3', '1e3', null])('%p is not an amount', (text) => {
    expect(parseYuan(text)).toBeNull()
  })
})

test('basis points as a percentage', () => {
  expect(formatRate(3000)).toBe('30%')
  expect(formatRate(150)).toBe('1.5%')
  expect(formatRate(5)).toBe('0.05%')
  expect(formatRate(0)).toBe('0%')
})
