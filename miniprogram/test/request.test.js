const { createWx, json } = require('./support/wx-mock')

let request
let wx

function load(handler) {
  jest.resetModules()
  wx = createWx(handler)
  global.wx = wx
  request = require('../utils/request')
  require('../config').setApiBase('https://api.test/api/mp/v1')
  require('../config').setStandinBase(null)
}

const loginAnswer = (n) => json(200, { token: 'token-' + n, expires_in: 7200, bound: true })

test('a first request logs in with wx.login and sends the bearer token', async () => {
  let logins = 0
  load((req) => {
    if (req.url.endsWith('/auth/login')) return loginAnswer(++logins)
    expect(req.header.Authorization).toBe('Bearer token-1')
    return json(200, { ok: true })
  })
  await expect(request.api.get('/me')).resolves.toEqual({ ok: true })
  expect(wx.logins).toBe(1)
  expect(wx.requests[0].data).toEqual({ code: 'code-1' })
  expect(wx.getStorageSync(request.TOKEN_KEY)).toBe('token-1')
})

test('an expired token is renewed silently and the request retried once', async () => {
  let logins = 0
  load((req) => {
    if (req.url.endsWith('/auth/login')) return loginAnswer(++logins)
    if (req.header.Authorization === 'Bearer stale') return json(401, { error: { code: 'token_expired', message: '登录已过期，请重新登录' } })
    return json(200, { items: [] })
  })
  wx.setStorageSync(request.TOKEN_KEY, 'stale')
  await expect(request.api.get('/orders')).resolves.toEqual({ items: [] })
  expect(wx.logins).toBe(1)
  expect(wx.requests.map((r) => r.url.replace('https://api.test/api/mp/v1', ''))).toEqual(['/orders', '/auth/login', '/orders'])
})

test('requests that meet an expired token together share one login', async () => {
  let logins = 0
  load((req) => {
    if (req.url.endsWith('/auth/login')) return loginAnswer(++logins)
    if (req.header.Authorization === 'Bearer stale') return json(401, { error: { code: 'token_expired', message: '登录已过期' } })
    return json(200, { path: req.url })
  })
  wx.setStorageSync(request.TOKEN_KEY, 'stale')
  await Promise.all([request.api.get('/me'), request.api.get('/cart'), request.api.get('/orders')])
  expect(wx.logins).toBe(1)
})

test('a second 401 is not retried forever: it becomes an error', async () => {
  load((req) => (req.url.endsWith('/auth/login') ? loginAnswer(1) : json(401, { error: { code: 'unauthorized', message: '请先登录' } })))
  await expect(request.api.get('/me')).rejects.toMatchObject({ status: 401, message: '请先登录' })
  expect(wx.requests.filter((r) => r.url.endsWith('/me'))).toHaveLength(2)
})

test("errors carry the API's Chinese message, code, details and the problems list", async () => {
  const problems = [{ code: 'below_moq', sku_id: 32, message: '饮用天然水 起订量为 10箱，当前 4箱' }]
  load((req) => (req.url.endsWith('/auth/login') ? loginAnswer(1)
    : json(422, { error: { code: 'order_invalid', message: '订单有 1 个问题', details: { problems } } })))
  const err = await request.api.post('/orders', {}).catch((e) => e)
  expect(err).toBeInstanceOf(request.ApiError)
  expect(err).toMatchObject({ code: 'order_invalid', status: 422, message: '订单有 1 个问题' })
  expect(err.problems).toEqual(problems)
})

test('an answer without the error shape and a failed network get friendly Chinese messages', async () => {
  load((req) => {
    if (req.url.endsWith('/auth/login')) return loginAnswer(1)
    if (req.url.endsWith('/boom')) return json(500, '<html>Internal Server Error</html>')
    return 'network'
  })
  await expect(request.api.get('/boom')).rejects.toMatchObject({ status: 500, message: '服务器开小差了，请稍后重试' })
  await expect(request.api.get('/cart')).rejects.toMatchObject({ code: 'network', message: request.NETWORK_MESSAGE })
})

test('a WeChat user not yet bound is remembered as unbound', async () => {
  load((req) => (req.url.endsWith('/auth/login') ? json(200, { token: 't', expires_in: 7200, bound: true })
    : json(403, { error: { code: 'not_bound', message: '该微信尚未绑定经销商账号，请输入邀请码完成绑定' } })))
  await expect(request.api.get('/me')).rejects.toMatchObject({ code: 'not_bound' })
  expect(request.isBound()).toBe(false)
})

test('query parameters are encoded and empty ones left out', async () => {
  load((req) => (req.url.endsWith('/auth/login') ? loginAnswer(1) : json(200, {})))
  await request.api.get('/products', { q: '生抽 王', category_id: '', page: 2 })
  expect(wx.requests[1].url).toBe('https://api.test/api/mp/v1/products?q=%E7%94%9F%E6%8A%BD%20%E7%8E%8B&page=2')
})

test('the demo in DevTools takes its login code from the stand-in, with one openid per device', async () => {
  load((req) => {
    if (req.url === 'http://127.0.0.1:5001/_standin/wx/login') return json(200, { code: 'standin-code' })
    if (req.url.endsWith('/auth/login')) return json(200, { token: 't', expires_in: 7200, bound: false })
    return json(200, {})
  })
  require('../config').setStandinBase('http://127.0.0.1:5001')
  await request.login()
  await request.login()
  const asks = wx.requests.filter((r) => r.url.endsWith('/_standin/wx/login'))
  expect(asks).toHaveLength(2)
  expect(asks[0].data.openid).toMatch(/^o-devtools-/)
  expect(asks[1].data.openid).toBe(asks[0].data.openid)
  expect(wx.requests.find((r) => r.url.endsWith('/auth/login')).data).toEqual({ code: 'standin-code' })
  expect(wx.logins).toBe(0)
})

test('release builds have no stand-in and the HTTPS API base', () => {
  load(() => json(200, {}))
  const config = require('../config')
  config.setApiBase(null)
  config.setStandinBase(undefined)
  wx.getAccountInfoSync = () => ({ miniProgram: { envVersion: 'release' } })
  expect(config.apiBase()).toMatch(/^https:\/\//)
  expect(config.standinBase()).toBeNull()
  wx.getAccountInfoSync = () => ({ miniProgram: { envVersion: 'develop' } })
  expect(config.apiBase()).toBe('http://127.0.0.1:5000/api/mp/v1')
})
