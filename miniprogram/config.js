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

let override = null

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
}
