/**
 * A fake `wx` for unit tests: storage in memory, wx.login codes counted, and wx.request
 * answered by a handler the test gives ({method, url, data, header} → {statusCode, data, header}
 * or the string 'network' for a failed request). Every call is recorded in `wx.calls`.
 */
function createWx(handler) {
  const storage = {}
  const calls = []
  let logins = 0
  const record = (name) => (options) => {
    calls.push({ name, options })
    if (options && options.success) options.success({ confirm: true, errMsg: name + ':ok' })
  }
  const wx = {
    calls,
    storage,
    requests: [],
    getStorageSync: (k) => (k in storage ? storage[k] : ''),
    setStorageSync: (k, v) => {
      storage[k] = v
    },
    removeStorageSync: (k) => {
      delete storage[k]
    },
    getAccountInfoSync: () => ({ miniProgram: { envVersion: 'develop', appId: 'wx-test' } }),
    login: ({ success }) => {
      logins += 1
      success({ code: 'code-' + logins, errMsg: 'login:ok' })
    },
    get logins() {
      return logins
    },
    request: (options) => {
      const req = { method: options.method, url: options.url, data: options.data, header: options.header }
      wx.requests.push(req)
      Promise.resolve().then(() => handler(req)).then((res) => {
        if (res === 'network') options.fail({ errMsg: 'request:fail timeout' })
        else options.success(Object.assign({ header: {} }, res))
      }, (err) => options.fail({ errMsg: String(err) }))
    },
    requestSubscribeMessage: (options) => {
      calls.push({ name: 'requestSubscribeMessage', options })
      const answer = {}
      options.tmplIds.forEach((id) => {
        answer[id] = 'accept'
      })
      options.success(answer)
    },
  }
  ;['navigateTo', 'redirectTo', 'switchTab', 'reLaunch', 'showToast', 'showModal', 'showLoading', 'hideLoading',
    'stopPullDownRefresh', 'setNavigationBarTitle', 'setClipboardData', 'previewImage'].forEach((name) => {
    wx[name] = record(name)
  })
  return wx
}

function json(statusCode, data, header) {
  return { statusCode, data, header: header || {} }
}

module.exports = { createWx, json }
