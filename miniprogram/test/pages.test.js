// Page logic with the captured API answers: roles, checkout submit, problems beside lines.
const { open, tap } = require('./support/pages')
const { createWx, json } = require('./support/wx-mock')
const api = require('./support/api-answers')

const { fixtures } = api

function phone(overrides) {
  jest.resetModules()
  global.wx = createWx((req) => {
    if (req.url.endsWith('/auth/login')) return json(200, { token: 't', expires_in: 7200, bound: true })
    for (const [match, handler] of overrides || []) {
      if (match(req)) return handler(req)
    }
    return api.answer(req)
  })
  require('../config').setApiBase('https://api.test/api/mp/v1')
  require('../config').setStandinBase(null)
  return global.wx
}

const isMe = (req) => req.url.endsWith('/me')
const viewerMe = () => json(200, { ...fixtures['GET /me'], user: { ...fixtures['GET /me'].user, role: 'viewer' } })
const orderPost = (req) => req.method === 'POST' && /\/orders$/.test(req.url)

test('a viewer sees prices but no order buttons anywhere', async () => {
  phone([[isMe, viewerMe]])
  const detail = await open('/pages/product/detail?id=32')
  expect(detail.data.product.price_text).toMatch(/^¥/)
  expect(detail.data.canOrder).toBe(false)
  expect(await detail.onAdd()).toBeUndefined()
  expect(global.wx.requests.some((r) => r.method === 'PUT')).toBe(false)
  const order = await open('/pages/order/detail?order_no=SO202612080001')
  expect(order.data.actions).toEqual({ pay: false, cancel: false, confirm: false, ret: false })
  const home = await open('/pages/index/index')
  expect(home.data).toMatchObject({ canOrder: false, roleLabel: '只读' })
})

test('an owner gets the order actions the status allows', async () => {
  phone([[(r) => /\/orders\/SO\d+$/.test(r.url), () => json(200, { ...fixtures['GET /orders/{no}'], status: 'shipped' })]])
  const order = await open('/pages/order/detail?order_no=SO202612080001')
  expect(order.data.actions).toMatchObject({ cancel: false, confirm: true })
})

test('checkout shows each problem beside its line and sends nothing while they remain', async () => {
  const wx = phone()
  const checkout = await open('/pages/checkout/checkout')
  expect(checkout.data.ok).toBe(false)
  const line = checkout.data.lines.find((l) => l.sku_id === 32)
  expect(line.problems.join()).toMatch(/起订量为 10/)
  expect(await checkout.onSubmit()).toBeNull()
  expect(wx.requests.filter(orderPost)).toHaveLength(0)
})

test('a double tap on 提交订单 sends one order with the checkout key', async () => {
  let posts = 0
  const placed = { ...fixtures['GET /orders/{no}'], order_no: 'SO202612080099', payment_method: 'credit', totals: { ...fixtures['GET /orders/{no}'].totals, due_fen: 0 } }
  const wx = phone([
    [(r) => r.url.endsWith('/checkout/preview'), () => json(200, { ...fixtures['POST /checkout/preview'], ok: true, problems: [] })],
    [orderPost, () => { posts += 1; return json(201, placed) }],
  ])
  const checkout = await open('/pages/checkout/checkout')
  const [first, second] = await Promise.all([checkout.onSubmit(), checkout.onSubmit()])
  expect(first.order_no).toBe('SO202612080099')
  expect(second).toBeNull()
  expect(posts).toBe(1)
  expect(wx.requests.find(orderPost).header['Idempotency-Key']).toBe(checkout.checkout.key)
  expect(wx.calls.find((c) => c.name === 'redirectTo').options.url).toBe('/pages/order/detail?order_no=SO202612080099')
  expect(wx.calls.some((c) => c.name === 'requestSubscribeMessage')).toBe(true)
})

test('a message opens the page it links to', async () => {
  const wx = phone([[(r) => r.url.includes('/messages'), () => json(200, { items: [{ id: 1, event: 'order_shipped', title: '订单已发货', body: '…', page: 'pages/order/detail?order_no=SO202612080001', created_at: '2026-12-08T01:00:00+00:00' }], page: 1, page_size: 20, total: 1 })]])
  const messages = await open('/pages/message/list')
  messages.onOpen(tap({ page: messages.data.list.items[0].page }))
  expect(wx.calls.find((c) => c.name === 'navigateTo').options.url).toBe('/pages/order/detail?order_no=SO202612080001')
})

test('forwarding a card counts the share and uses the card the API gives', async () => {
  const card = { title: '新品上市', path: '/pages/material/detail?id=1', imageUrl: 'https://files.test/c.jpg' }
  const wx = phone([[(r) => r.url.endsWith('/share'), () => json(200, { kind: 'article', title: '新品上市', method: 'share_app_message', share_app_message: card })]])
  const page = await open('/pages/material/detail?id=1')
  const shared = page.onShareAppMessage()
  expect(shared.path).toBe('/pages/material/detail?id=1')
  await expect(shared.promise).resolves.toEqual(card)
  expect(wx.requests.filter((r) => r.method === 'POST' && r.url.endsWith('/materials/1/share'))).toHaveLength(1)
})
