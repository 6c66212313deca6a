// One order (GET /orders/<no>): lines, amounts, timeline, shipments with waybills and tracking;
// pay what is due, cancel before approval, confirm receipt once everything shipped.
// A viewer sees all of it and none of the buttons. Subscribe messages open this page.
const { api } = require('../../utils/request')
const session = require('../../utils/session')
const { chinaTime } = require('../../utils/format')
const { shapeLines, totalsText } = require('../../utils/lines')
const { toast } = require('../../utils/list')

const PAYABLE_METHODS = ['wechat', 'offline']

Page({
  data: { order: null, lines: [], totals: {}, events: [], shipments: [], actions: {}, error: '', busy: false },

  onLoad(query) {
    this.orderNo = query.order_no
  },

  onShow() {
    return this.load()
  },

  onPullDownRefresh() {
    return this.load().finally(() => wx.stopPullDownRefresh())
  },

  async load() {
    try {
      await session.loadMe()
      return this.show(await api.get('/orders/' + this.orderNo))
    } catch (err) {
      this.setData({ error: err.message })
      return null
    }
  },

  show(order) {
    const can = session.canOrder()
    const open = order.status !== 'cancelled' && order.status !== 'rejected'
    this.setData({
      order,
      error: '',
      lines: shapeLines(order.lines, [], null).lines,
      totals: totalsText(order.totals),
      events: order.events.slice().reverse().map((e) => ({ ...e, at_text: chinaTime(e.at) })),
      shipments: order.shipments.map((s) => ({
        ...s,
        shipped_text: chinaTime(s.shipped_at),
        trail: (s.tracking.events || []).map((t) => ({ ...t })),
      })),
      actions: {
        pay: can && open && order.totals.due_fen > 0 && PAYABLE_METHODS.indexOf(order.payment_method) >= 0,
        cancel: can && order.status === 'pending_approval',
        confirm: can && order.status === 'shipped',
        ret: can && ['partially_shipped', 'shipped', 'completed'].indexOf(order.status) >= 0,
      },
    })
    return order
  },

  onReturn() {
    wx.navigateTo({ url: '/pages/return/create?order_no=' + this.orderNo })
  },

  onPay() {
    wx.navigateTo({ url: '/pages/pay/pay?order_no=' + this.orderNo })
  },

  async onCancel() {
    const sure = await confirm('确定取消订单 ' + this.orderNo + '？库存与信用额度将释放。')
    if (!sure) return null
    return this.act(() => api.post('/orders/' + this.orderNo + '/cancel', {}), '订单已取消')
  },

  async onConfirmReceipt() {
    const sure = await confirm('确认已收到全部货物？')
    if (!sure) return null
    return this.act(() => api.post('/orders/' + this.orderNo + '/confirm-receipt'), '已确认收货')
  },

  async act(call, done) {
    if (this.data.busy) return null
    this.setData({ busy: true })
    try {
      const order = this.show(await call())
      wx.showToast({ title: done, icon: 'success' })
      return order
    } catch (err) {
      toast(err.message)
      return null
    } finally {
      this.setData({ busy: false })
    }
  },

  onCopyWaybill(e) {
    wx.setClipboardData({ data: e.currentTarget.dataset.no })
  },
})

function confirm(content) {
  return new Promise((resolve) => {
    wx.showModal({ title: '请确认', content, success: (res) => resolve(!!res.confirm), fail: () => resolve(false) })
  })
}

