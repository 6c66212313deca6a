/**
 * Subscribe messages: after submitting and after paying, ask with wx.requestSubscribeMessage
 * for the templates the brand configured (GET /subscriptions/templates) and report the
 * accepted ones to POST /subscriptions (each acceptance allows one message).
 * Never throws: a refusal or a failure must not spoil the order the dealer just placed.
 */
const { api } = require('./request')

const MOMENTS = {
  submitted: ['order_approved', 'order_rejected', 'order_shipped'],
  paid: ['order_shipped', 'order_approved', 'payment_due'],
}

let templatesCache = null

function templates() {
  if (!templatesCache) {
    templatesCache = api.get('/subscriptions/templates').then((res) => res.templates || []).catch((err) => {
      templatesCache = null
      throw err
    })
  }
  return templatesCache
}

function requestSubscribe(tmplIds) {
  return new Promise((resolve) => {
    wx.requestSubscribeMessage({ tmplIds, success: resolve, fail: () => resolve({}) })
  })
}

/** Ask at `moment` ('submitted' | 'paid'); resolves with the consents or null. */
async function askAt(moment) {
  try {
    const wanted = MOMENTS[moment] || []
    const list = (await templates()).filter((t) => wanted.indexOf(t.event) >= 0)
    const ids = list.map((t) => t.template_id).slice(0, 3) // WeChat allows three a request
    if (!ids.length) return null
    const answer = await requestSubscribe(ids)
    const accepted = ids.filter((id) => answer[id] === 'accept')
    if (!accepted.length) return null
    return await api.post('/subscriptions', { template_ids_accepted: accepted })
  } catch (err) {
    return null
  }
}

function resetCache() {
  templatesCache = null
}

module.exports = { askAt, MOMENTS, resetCache }
