/**
 * Answers of the real API, captured from the demo (test/fixtures/api.json, recorded with a
 * D001 owner's token), for page tests that need no server. A return request is written here
 * in the ReturnOut shape, as the demo has none.
 */
const fixtures = require('../fixtures/api.json')
const { json } = require('./wx-mock')

const RETURN = {
  id: 1, return_no: 'RT202612080001-1', order_no: 'SO202612080001', status: 'approved', status_label: '已同意待退回',
  refund_fen: 7960, refund_status: null, refunded_fen: 0, line_count: 1, created_at: '2026-12-08T02:00:00+00:00',
  reason: '外箱破损', decision_reason: '请寄回破损的两箱',
  lines: [{ sku_id: 1, sku_code: 'JY001', name: '特级生抽王', spec: '500ml×12瓶', unit: '箱', qty: 2, unit_price_fen: 3980, amount_fen: 7960, received_qty: 0 }],
  photos: [{ id: 3, url: 'https://files.test/p/3.jpg', content_type: 'image/jpeg', width: 800, height: 600 }],
  events: [{ from_status: null, to_status: 'pending', label: '待审核', actor_type: 'dealer_user', actor_name: '陈经理', reason: null, at: '2026-12-08T02:00:00+00:00' }],
  refund: { status: null, status_label: '—', amount_fen: 0, refunded_fen: 0, items: [] },
}

const ORDER_PAGE = (no) => ({ ...fixtures['GET /orders/{no}'], order_no: no })

function route(url) {
  return url.replace(/^https?:\/\/[^/]+\/api\/mp\/v1/, '').split('?')[0]
}

function answer(req) {
  const path = route(req.url)
  const key = (req.method || 'GET') + ' ' + path
  if (fixtures[key] !== undefined) return json(200, fixtures[key])
  if (/^GET \/returns\/\d+$/.test(key)) return json(200, RETURN)
  if (/^GET \/orders\/[A-Z0-9]+$/.test(key)) return json(200, ORDER_PAGE(path.split('/').pop()))
  if (/^PUT \/cart\/items\/\d+$/.test(key) || /^DELETE \/cart\/items\/\d+$/.test(key)) return json(200, fixtures['GET /cart'])
  const generic = key.replace(/\/\d+(?=\/|$)/, '/{id}')
  if (fixtures[generic] !== undefined) return json(200, fixtures[generic])
  if (/^GET \/products\/\d+$/.test(key)) return json(200, fixtures['GET /products/32'])
  return json(404, { error: { code: 'not_in_fixtures', message: '测试里没有这个接口的应答：' + key } })
}

module.exports = { answer, fixtures, RETURN }
