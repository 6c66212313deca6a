/**
 * Who is using the mini-program: logs in (utils/request.login), keeps GET /me, knows the
 * role (a viewer sees prices and orders but no order buttons) and sends an unbound WeChat
 * user to the invite-code page.
 */
const { api, login, getToken, isBound, clearSession, TOKEN_KEY, BOUND_KEY } = require('./request')

let me = null
let loading = null

async function ensureLoggedIn() {
  if (!getToken()) return login()
  return { bound: isBound() }
}

/** GET /me (cached; force to reload). An unbound user is sent to pages/login/login. */
function loadMe({ force = false } = {}) {
  if (me && !force) return Promise.resolve(me)
  if (!loading) {
    loading = api.get('/me').then((res) => {
      me = res
      wx.setStorageSync(BOUND_KEY, true)
      return me
    }).catch((err) => {
      if (err.code === 'not_bound') goBind()
      throw err
    }).finally(() => {
      loading = null
    })
  }
  return loading
}

function goBind() {
  me = null
  wx.reLaunch({ url: '/pages/login/login' })
}

/** POST /auth/bind with an invite code; the new user's /me is loaded afterwards. */
async function bind(inviteCode, name) {
  const body = { invite_code: String(inviteCode || '').trim() }
  if (name && String(name).trim()) body.name = String(name).trim()
  await api.post('/auth/bind', body)
  wx.setStorageSync(BOUND_KEY, true)
  return loadMe({ force: true })
}

function current() {
  return me
}

/** Owners and buyers order; a viewer only looks. */
function canOrder() {
  return !!me && me.user.role !== 'viewer'
}

function suspended() {
  return !!me && me.dealer.status !== 'active'
}

function logout() {
  me = null
  clearSession()
}

module.exports = { ensureLoggedIn, loadMe, bind, current, canOrder, suspended, logout, goBind, TOKEN_KEY }
