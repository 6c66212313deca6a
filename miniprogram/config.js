/**
 * Where the API is, per environment (wx.getAccountInfoSync().miniProgram.envVersion):
 *   develop  → the local demo (`make demo`): http://127.0.0.1:5000/api/mp/v1
 *              (in 微信开发者工具 tick 「不校验合法域名」 for plain HTTP on 127.0.0.1)
 *   trial    → the brand's test or production HTTPS domain
 *   release  → the brand's HTTPS domain (must be in the request-domain whitelist of the
 *              mini-program admin, 开发管理 → 开发设置 → 服务器域名)
 * A brand changes only API_BASES below (docs/dealers/miniprogram.md).
 */
const API_BASES = {
  develop: 'http://127.0.0.1:5000/api/mp/v1',
  trial: 'https://dinghuo.example.com/api/mp/v1',
  release: 'https://dinghuo.example.com/api/mp/v1',
}

function envVersion() {
  try {
    return wx.getAccountInfoSync().miniProgram.envVersion || 'develop'
  } catch (e) {
    return 'develop'
  }
}

/**
 * Only for the demo in 微信开发者工具: the local WeChat stand-in (`make demo`, port 5001) plays
 * the phone's side of WeChat, because the demo's API asks the stand-in, not WeChat, to check
 * login codes and to take payments. With a stand-in base, login takes its code from
 * POST <stand-in>/_standin/wx/login and 微信支付 pays through POST <stand-in>/_standin/pay/<no>/pay.
 * trial and release have none: real wx.login and wx.requestPayment.
 */
const STANDIN_BASES = {
  develop: 'http://127.0.0.1:5001',
}

let override = null
let standinOverride

module.exports = {
  API_BASES,
  envVersion,
  /** The API base for this run; tests point it elsewhere with setApiBase. */
  apiBase() {
    return override || API_BASES[envVersion()] || API_BASES.release
  },
  setApiBase(base) {
    override = base ? String(base).replace(/\/+$/, '') : null
  },
  STANDIN_BASES,
  /** The demo stand-in for this run, or null (real WeChat). */
  standinBase() {
    return standinOverride !== undefined ? standinOverride : STANDIN_BASES[envVersion()] || null
  },
  setStandinBase(base) {
    standinOverride = base === undefined ? undefined : base || null
  },
}
