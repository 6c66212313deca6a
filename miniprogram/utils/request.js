/**
 * The one way the mini-program talks to the API (/api/mp/v1).
 *
 * - The token from POST /auth/login lives in storage; a request without one logs in first.
 * - A 401 (expired or unknown token) logs in again silently with wx.login and retries once;
 *   concurrent requests share that one login.
 * - A failure rejects with an ApiError whose `message` is the API's own Chinese
 *   `error.message` (or a friendly one for network trouble), with `code`, `status`,
 *   `details` and `problems` (details.problems) for pages to show beside the lines.
 */
const config = require('../config')

const TOKEN_KEY = 'dinghuo.token'
const BOUND_KEY = 'dinghuo.bound'

class ApiError extends Error {
  constructor({ code, message, status, details }) {
    super(message)
    this.name = 'ApiError'
    this.code = code
    this.status = status
    this.details = details || {}
    this.problems = (details && details.problems) || []
  }
}

const NETWORK_MESSAGE = '网络连接失败，请检查网络后重试'
const STATUS_MESSAGES = {
  401: '登录已失效，请重新打开小程序',
  403: '没有权限进行此操作',
  404: '内容不存在或已下架',
  413: '文件太大',
  429: '操作太频繁，请稍后再试',
  502: '服务暂时不可用，请稍后重试',
  503: '服务暂时不可用，请稍后重试',
}

/** The API's error shape → ApiError with its Chinese message. */
function toError(statusCode, body) {
  const error = body && typeof body === 'object' && body.error
  if (error && error.message) {
    return new ApiError({ code: error.code, message: error.message, status: statusCode, details: error.details })
  }
  return new ApiError({
    code: 'http_' + statusCode,
    message: STATUS_MESSAGES[statusCode] || (statusCode >= 500 ? '服务器开小差了，请稍后重试' : '请求失败（' + statusCode + '）'),
    status: statusCode,
  })
}

function networkError(err) {
  return new ApiError({ code: 'network', message: NETWORK_MESSAGE, status: 0, details: { errMsg: err && err.errMsg } })
}

function getToken() {
  return wx.getStorageSync(TOKEN_KEY) || ''
}

function setSession({ token, bound }) {
  wx.setStorageSync(TOKEN_KEY, token)
  if (bound !== undefined) wx.setStorageSync(BOUND_KEY, !!bound)
}

function clearSession() {
  wx.removeStorageSync(TOKEN_KEY)
  wx.removeStorageSync(BOUND_KEY)
}

function isBound() {
  return wx.getStorageSync(BOUND_KEY) === true
}

function query(params) {
  const parts = []
  Object.keys(params || {}).forEach((key) => {
    const value = params[key]
    if (value === undefined || value === null || value === '') return
    parts.push(encodeURIComponent(key) + '=' + encodeURIComponent(value))
  })
  return parts.length ? '?' + parts.join('&') : ''
}

/** wx.request as a promise of {statusCode, data, header}; rejects only on network failure. */
function send({ method, path, data, header }) {
  return new Promise((resolve, reject) => {
    wx.request({
      url: config.apiBase() + path,
      method,
      data,
      header: Object.assign({ 'Content-Type': 'application/json' }, header),
      timeout: 15000,
      success: resolve,
      fail: (err) => reject(networkError(err)),
    })
  })
}

const DEMO_OPENID_KEY = 'dinghuo.demo_openid'

/** A login code: wx.login on a phone; from the stand-in when the demo runs in DevTools (config.js). */
function wxLogin() {
  const standin = config.standinBase()
  if (standin) return standinLogin(standin)
  return new Promise((resolve, reject) => {
    wx.login({
      success: (res) => (res.code ? resolve(res.code) : reject(new ApiError({ code: 'wx_login', message: '微信登录失败，请重试', status: 0 }))),
      fail: () => reject(new ApiError({ code: 'wx_login', message: '微信登录失败，请重试', status: 0 })),
    })
  })
}

function standinLogin(standin) {
  let openid = wx.getStorageSync(DEMO_OPENID_KEY)
  if (!openid) {
    openid = 'o-devtools-' + Date.now().toString(36) + Math.floor(Math.random() * 1e6).toString(36)
    wx.setStorageSync(DEMO_OPENID_KEY, openid)
  }
  return new Promise((resolve, reject) => {
    wx.request({
      url: standin + '/_standin/wx/login',
      method: 'POST',
      data: { openid },
      header: { 'Content-Type': 'application/json' },
      success: (res) => (res.statusCode === 200 && res.data.code ? resolve(res.data.code)
        : reject(new ApiError({ code: 'wx_login', message: '本地模拟服务没有返回登录 code，请确认 make demo 正在运行', status: 0 }))),
      fail: () => reject(new ApiError({ code: 'wx_login', message: '连不上本地模拟服务 ' + standin + '，请先运行 make demo', status: 0 })),
    })
  })
}

let loggingIn = null

/** wx.login → POST /auth/login; stores the token. One login at a time, shared by all callers. */
function login() {
  if (!loggingIn) {
    loggingIn = wxLogin()
      .then((code) => send({ method: 'POST', path: '/auth/login', data: { code } }))
      .then((res) => {
        if (res.statusCode !== 200) throw toError(res.statusCode, res.data)
        setSession({ token: res.data.token, bound: res.data.bound })
        return res.data
      })
      .finally(() => {
        loggingIn = null
      })
  }
  return loggingIn
}

/**
 * request({method, path, data, params, header}) → the response body.
 * Resolves with the JSON body on 2xx; `withHeaders: true` resolves {data, header, statusCode}.
 */
async function request(options) {
  const method = (options.method || 'GET').toUpperCase()
  const path = options.path + query(options.params)
  if (!getToken()) await login()
  let res = await send({ method, path, data: options.data, header: withAuth(options.header) })
  if (res.statusCode === 401) {
    wx.removeStorageSync(TOKEN_KEY)
    await login()
    res = await send({ method, path, data: options.data, header: withAuth(options.header) })
  }
  if (res.statusCode >= 200 && res.statusCode < 300) {
    return options.withHeaders ? { data: res.data, header: res.header || {}, statusCode: res.statusCode } : res.data
  }
  if (res.statusCode === 403 && res.data && res.data.error && res.data.error.code === 'not_bound') {
    wx.setStorageSync(BOUND_KEY, false)
  }
  throw toError(res.statusCode, res.data)
}

function withAuth(header) {
  return Object.assign({}, header, { Authorization: 'Bearer ' + getToken() })
}

/** wx.uploadFile to POST /uploads (multipart, field `file`) → the upload {id, url, …}. */
async function upload(filePath) {
  if (!getToken()) await login()
  const once = () => new Promise((resolve, reject) => {
    wx.uploadFile({
      url: config.apiBase() + '/uploads',
      filePath,
      name: 'file',
      header: withAuth(),
      success: resolve,
      fail: (err) => reject(networkError(err)),
    })
  })
  let res = await once()
  if (res.statusCode === 401) {
    wx.removeStorageSync(TOKEN_KEY)
    await login()
    res = await once()
  }
  const body = typeof res.data === 'string' ? safeParse(res.data) : res.data
  if (res.statusCode === 201 || res.statusCode === 200) return body
  throw toError(res.statusCode, body)
}

function safeParse(text) {
  try {
    return JSON.parse(text)
  } catch (e) {
    return null
  }
}

const api = {
  get: (path, params) => request({ method: 'GET', path, params }),
  post: (path, data, extra) => request(Object.assign({ method: 'POST', path, data }, extra)),
  put: (path, data) => request({ method: 'PUT', path, data }),
  del: (path) => request({ method: 'DELETE', path }),
}

module.exports = {
  ApiError, request, login, upload, api, getToken, clearSession, isBound, toError, NETWORK_MESSAGE,
  TOKEN_KEY, BOUND_KEY,
}
