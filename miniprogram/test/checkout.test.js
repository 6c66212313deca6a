const { createWx, json } = require('./support/wx-mock')

let checkout
let wx

function load(handler) {
  jest.resetModules()
  wx = createWx(handler)
  global.wx = wx
  checkout = require('../utils/checkout')
  require('../config').setApiBase('https://api.test/api/mp/v1')
  require('../config').setStandinBase(null)
  wx.setStorageSync('dinghuo.token', 'token')
}

const order = { order_no: 'SO202612080001', totals: { due_fen: 0 } }
const body = { lines: [{ sku_id: 32, qty: 10 }], payment_method: 'credit', use_rebate_fen: 0 }
const orderPosts = () => wx.requests.filter((r) => r.url.endsWith('/orders') && r.method === 'POST')

test('the key is valid for the API (8–64 of A-Z a-z 0-9 _ . : -) and new per checkout', () => {
  load(() => json(201, order))
  const a = checkout.newIdempotencyKey()
  expect(a).toMatch(/^[A-Za-z0-9_.:-]{8,64}$/)
  expect(checkout.newIdempotencyKey()).not.toBe(a)
})

test('a retry after a network failure sends the same Idempotency-Key', async () => {
  let attempts = 0
  load(() => (++attempts < 3 ? 'network' : json(201, order)))
  const c = checkout.createCheckout()
  const { order: placed } = await c.submit(body)
  expect(placed.order_no).toBe(order.order_no)
  const keys = orderPosts().map((r) => r.header['Idempotency-Key'])
  expect(keys).toHaveLength(3)
  expect(new Set(keys).size).toBe(1)
  expect(keys[0]).toBe(c.key)
})

test('a tap again after a failed submit reuses the key; the server says it replayed', async () => {
  let attempts = 0
  load(() => (++attempts <= 3 ? 'network' : json(201, order, { 'Idempotent-Replayed': 'true' })))
  const c = checkout.createCheckout()
  await expect(c.submit(body)).rejects.toMatchObject({ code: 'network' })
  const again = await c.submit(body)
  expect(again.replayed).toBe(true)
  expect(new Set(orderPosts().map((r) => r.header['Idempotency-Key'])).size).toBe(1)
})

test('a double tap while submitting makes one request', async () => {
  load(() => json(201, order))
  const c = checkout.createCheckout()
  const [a, b] = await Promise.all([c.submit(body), c.submit(body)])
  expect(a.order).toEqual(b.order)
  expect(orderPosts()).toHaveLength(1)
  await c.submit(body) // after success the checkout is done: no new order
  expect(orderPosts()).toHaveLength(1)
})

test('a changed basket after a refused submit gets a new key (same key + other body would be 409)', async () => {
  let attempts = 0
  load(() => (++attempts === 1
    ? json(422, { error: { code: 'order_invalid', message: '有问题', details: { problems: [{ code: 'below_moq', sku_id: 32, message: 'x' }] } } })
    : json(201, order)))
  const c = checkout.createCheckout()
  await expect(c.submit({ ...body, lines: [{ sku_id: 32, qty: 4 }] })).rejects.toMatchObject({ status: 422 })
  await c.submit(body)
  const keys = orderPosts().map((r) => r.header['Idempotency-Key'])
  expect(keys[0]).not.toBe(keys[1])
})

test('a refusal (4xx) is not retried automatically', async () => {
  load(() => json(409, { error: { code: 'credit_limit_exceeded', message: '信用额度不足' } }))
  const c = checkout.createCheckout()
  await expect(c.submit(body)).rejects.toMatchObject({ message: '信用额度不足' })
  expect(orderPosts()).toHaveLength(1)
})
