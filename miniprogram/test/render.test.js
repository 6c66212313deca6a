/**
 * @jest-environment jsdom
 */
// Every page's WXML renders (miniprogram-simulate compiles it) with the data its own logic
// produced from API-shaped answers: a template that does not parse, or names a component
// app.json does not declare, fails here rather than in 微信开发者工具.
const fs = require('fs')
const path = require('path')
const simulate = require('miniprogram-simulate')
const { instantiate, APP_PAGES, ROOT } = require('./support/pages')
const { createWx, json } = require('./support/wx-mock')
const api = require('./support/api-answers')

const { fixtures } = api

const APP = JSON.parse(fs.readFileSync(path.join(ROOT, 'app.json'), 'utf8'))
const stepper = simulate.load(path.join(ROOT, 'components', 'stepper', 'index'))

function renderPage(route, data) {
  const template = fs.readFileSync(path.join(ROOT, route + '.wxml'), 'utf8')
  const id = simulate.load({ template, usingComponents: { 'qty-stepper': stepper }, data })
  const comp = simulate.render(id)
  comp.attach(document.createElement('parent-wrapper'))
  return comp
}

const QUERIES = {
  'pages/product/detail': { id: '32' }, 'pages/order/detail': { order_no: 'SO202612080007' }, 'pages/pay/pay': { order_no: 'SO202612080007' },
  'pages/payment/offline': { id: '1' }, 'pages/statement/detail': { id: '1' }, 'pages/rebate/detail': { id: '1' },
  'pages/return/detail': { id: '1' }, 'pages/return/create': { order_no: 'SO202612080001' }, 'pages/policy/detail': { id: '1' }, 'pages/material/detail': { id: '1' },
}

const BUILT_IN = ['scroll-view', 'rich-text', 'swiper-item', 'movable-view', 'movable-area', 'cover-view', 'cover-image', 'page-meta', 'navigation-bar']

// What a reader must see on a few pages (from the captured answers).
const SHOWN = {
  'pages/product/list': [fixtures['GET /products'].items[0].name, '¥'],
  'pages/product/detail': ['起订 10 箱，按 2 箱的倍数', '加入购物车'],
  'pages/cart/cart': ['起订量为 10', '去结算'],
  'pages/checkout/checkout': ['起订量为 10', '微信支付', '提交订单'],
  'pages/order/detail': [fixtures['GET /orders/{no}'].shipments.length ? fixtures['GET /orders/{no}'].shipments[0].tracking_no : '订单记录', '已完成'],
  'pages/account/account': ['可用信用额度', '返利'],
  'pages/statement/detail': [fixtures['GET /statements/{id}'].statement_no, '确认无误'],
  'pages/policy/detail': [fixtures['GET /policies/{id}'].title],
  'pages/return/detail': ['RT202612080001-1', '外箱破损'],
  'pages/return/create': ['已发', '提交退货申请'],
}

beforeEach(() => {
  jest.resetModules()
  global.wx = createWx((req) => {
    if (req.url.endsWith('/auth/login')) return json(200, { token: 't', expires_in: 7200, bound: true })
    return api.answer(req)
  })
  require('../config').setApiBase('https://api.test/api/mp/v1')
  require('../config').setStandinBase(null)
})

test('every page declared in app.json has a component app.json declares', () => {
  for (const route of APP_PAGES) {
    const template = fs.readFileSync(path.join(ROOT, route + '.wxml'), 'utf8')
    for (const [, tag] of template.matchAll(/<([a-z][a-z0-9-]*-[a-z0-9-]+)/g)) {
      if (BUILT_IN.indexOf(tag) < 0) expect(APP.usingComponents).toHaveProperty(tag)
    }
  }
})

test.each(APP_PAGES)('%s renders with the data its logic made from the API', async (route) => {
  const page = instantiate(route)
  if (page.onLoad) await page.onLoad(QUERIES[route] || {})
  if (page.onShow) await page.onShow()
  const comp = renderPage(route, page.data)
  expect(comp.dom.innerHTML.length).toBeGreaterThan(0)
  expect(page.data.error || (page.data.list && page.data.list.error) || '').toBe('')
  expect(comp.dom.textContent).not.toMatch(/undefined|NaN|\[object Object\]/)
  for (const text of SHOWN[route] || []) expect(comp.dom.textContent).toContain(text)
})
