// Pay an order: WeChat Pay with the signed parameters of POST /orders/<no>/pay passed to
// wx.requestPayment as they are; offline transfer opens the voucher form. After paying, the
// order is reloaded until the payment notice has reached the server, then subscribe messages.
const config = require('../../config')
const { api } = require('../../utils/request')
const { askAt } = require('../../utils/subscribe')
const { formatFen } = require('../../utils/money')
const { toast } = require('../../utils/list')

const POLLS = 10

Page({
  data: { order: null, due_text: '', paid: false, paying: false, error: '' },

  onLoad(query) {
    this.orderNo = query.order_no
    return this.load()
  },

  async load() {
    try {
      const order = await api.get('/orders/' + this.orderNo)
      this.setData({ order, due_text: formatFen(order.totals.due_fen), paid: order.totals.due_fen === 0, error: '' })
      return order
    } catch (err) {
      this.setData({ error: err.message })
      return null
    }
  },

  async onWechatPay() {
    if (this.data.paying) return null
    this.setData({ paying: true, error: '' })
    try {
      const pay = await api.post('/orders/' + this.orderNo + '/pay')
      const standin = config.standinBase()
      if (standin) await payAtStandin(standin, pay.out_trade_no) // the demo in DevTools (config.js)
      else await requestPayment(pay.params)
      const order = await this.waitUntilPaid()
      await askAt('paid')
      return order
    } catch (err) {
      this.setData({ error: err.message })
      return null
    } finally {
      this.setData({ paying: false })
    }
  },

  /** The payment notice reaches the server a moment after wx.requestPayment succeeds. */
  async waitUntilPaid() {
    for (let i = 0; i < POLLS; i += 1) {
      const order = await this.load()
      if (order && order.totals.due_fen === 0) return order
      await new Promise((resolve) => setTimeout(resolve, 300 * (i + 1)))
    }
    toast('支付结果确认中，请稍后在订单详情查看')
    return this.data.order
  },

  onOffline() {
    wx.redirectTo({ url: '/pages/payment/offline?order_no=' + this.orderNo })
  },

  onOpenOrder() {
    wx.redirectTo({ url: '/pages/order/detail?order_no=' + this.orderNo })
  },
})

/** The demo's payer: the stand-in marks the prepay order paid and sends the signed notice. */
function payAtStandin(standin, outTradeNo) {
  return new Promise((resolve, reject) => {
    wx.request({
      url: standin + '/_standin/pay/' + outTradeNo + '/pay',
      method: 'POST',
      success: (res) => (res.statusCode === 200 ? resolve() : reject(new Error('模拟付款失败：' + ((res.data && res.data.message) || res.statusCode)))),
      fail: () => reject(new Error('连不上本地模拟服务，请先运行 make demo')),
    })
  })
}

function requestPayment(params) {
  return new Promise((resolve, reject) => {
    wx.requestPayment({
      ...params,
      success: resolve,
      fail: (err) => {
        const cancelled = err && /cancel/.test(err.errMsg || '')
        const error = new Error(cancelled ? '已取消支付' : '支付未完成，请重试')
        error.code = cancelled ? 'pay_cancelled' : 'pay_failed'
        reject(error)
      },
    })
  })
}
