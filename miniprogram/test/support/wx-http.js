/**
 * `wx` for the end-to-end journey: wx.request and wx.uploadFile are real HTTP (fetch) to the
 * Dinghuo server; the phone's side of WeChat is played by the local stand-in (devtools/):
 *   wx.login                 → POST <standin>/_standin/wx/login {openid}  (a one-time code)
 *   wx.requestPayment        → the stand-in's prepay order for `package`, then
 *                              POST <standin>/_standin/pay/<out_trade_no>/pay (the payer pays;
 *                              the signed notice goes to the server)
 *   wx.requestSubscribeMessage → POST <standin>/_standin/wx/subscribe (the user accepts)
 * Navigation is recorded (`wx.navigations`) so the journey opens the page a tap leads to.
 */
const fs = require('fs')
const os = require('os')
const path = require('path')
const { APP_PAGES, parseUrl } = require('./pages')

function createHttpWx({ standin, openid }) {
  const storage = {}
  const navigations = []
  const toasts = []
  const pending = new Set()
  const track = (promise) => {
    pending.add(promise)
    promise.finally(() => pending.delete(promise))
    return promise
  }

  async function standinPost(route, body) {
    const res = await fetch(standin + route, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body || {}) })
    const data = await res.json()
    if (!res.ok) throw new Error(route + ' answered ' + res.status + ': ' + JSON.stringify(data))
    return data
  }

  function navigate(kind) {
    return (options) => {
      const { route } = parseUrl(options.url)
      if (APP_PAGES.indexOf(route) < 0) throw new Error(kind + ' to a page missing from app.json: ' + options.url)
      navigations.push({ kind, url: options.url })
      if (options.success) options.success({ errMsg: kind + ':ok' })
    }
  }

  const wx = {
    storage,
    navigations,
    toasts,
    /** Wait for requests still running (a page's fire-and-forget calls). */
    settle: () => Promise.all(Array.from(pending)),
    getStorageSync: (k) => (k in storage ? storage[k] : ''),
    setStorageSync: (k, v) => {
      storage[k] = v
    },
    removeStorageSync: (k) => {
      delete storage[k]
    },
    getAccountInfoSync: () => ({ miniProgram: { envVersion: 'develop', appId: 'wx-demo' } }),

    login({ success, fail }) {
      track(standinPost('/_standin/wx/login', { openid }).then((res) => success({ code: res.code, errMsg: 'login:ok' }), fail))
    },

    request({ url, method = 'GET', data, header = {}, success, fail }) {
      const init = { method, headers: { ...header } }
      if (data !== undefined && method !== 'GET') init.body = JSON.stringify(data)
      track(fetch(url, init).then(async (res) => {
        const text = await res.text()
        let body = text
        try {
          body = JSON.parse(text)
        } catch (e) { /* not JSON: passed on as text, as wx.request does */ }
        success({ statusCode: res.status, data: body, header: Object.fromEntries(res.headers.entries()) })
      }, (err) => fail({ errMsg: 'request:fail ' + err.message })))
    },

    uploadFile({ url, filePath, name, header = {}, success, fail }) {
      const form = new FormData()
      form.append(name, new Blob([fs.readFileSync(filePath)], { type: 'image/png' }), path.basename(filePath))
      track(fetch(url, { method: 'POST', headers: header, body: form }).then(async (res) => {
        success({ statusCode: res.status, data: await res.text() })
      }, (err) => fail({ errMsg: 'uploadFile:fail ' + err.message })))
    },

    requestPayment(params) {
      const { success, fail } = params
      track((async () => {
        for (const field of ['timeStamp', 'nonceStr', 'package', 'signType', 'paySign']) {
          if (typeof params[field] !== 'string' || !params[field]) throw new Error('requestPayment without ' + field)
        }
        const prepayId = params.package.replace(/^prepay_id=/, '')
        const orders = await (await fetch(standin + '/_standin/pay/orders')).json()
        const order = orders.find((o) => o.prepay_id === prepayId)
        if (!order) throw new Error('the stand-in knows no prepay order ' + prepayId)
        await standinPost('/_standin/pay/' + order.out_trade_no + '/pay')
      })().then(() => success({ errMsg: 'requestPayment:ok' }), (err) => fail({ errMsg: 'requestPayment:fail ' + err.message })))
    },

    requestSubscribeMessage({ tmplIds, success, fail }) {
      track(standinPost('/_standin/wx/subscribe', { openid, template_ids: tmplIds }).then(success, fail))
    },

    chooseMedia({ success }) {
      success({ tempFiles: [{ tempFilePath: pngFile(), fileType: 'image', size: 100 }] })
    },

    navigateTo: navigate('navigateTo'),
    redirectTo: navigate('redirectTo'),
    switchTab: navigate('switchTab'),
    reLaunch: navigate('reLaunch'),
    showToast: (o) => toasts.push(o.title),
    showModal: (o) => o.success && o.success({ confirm: true }),
    showLoading: () => {},
    hideLoading: () => {},
    stopPullDownRefresh: () => {},
    setNavigationBarTitle: () => {},
    setClipboardData: () => {},
    previewImage: () => {},
  }
  return wx
}

/** A real 8×8 PNG (a transfer voucher photo) in a temporary file. */
function pngFile() {
  const file = path.join(os.tmpdir(), 'dinghuo-voucher-' + process.pid + '.png')
  if (!fs.existsSync(file)) {
    fs.writeFileSync(file, Buffer.from(
      'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAFElEQVR4nGM8ISfHgA0wYRUdtBIA0MoBFD5jqJkAAAAASUVORK5CYII=', 'base64'))
  }
  return file
}

module.exports = { createHttpWx }
