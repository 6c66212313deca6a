// The cart, recomputed by the server (GET /cart): every problem beside its line; quantities
// change with the stepper (PUT /cart/items/<id>); 去结算 opens the checkout.
const { api } = require('../../utils/request')
const session = require('../../utils/session')
const { rulesFor } = require('../../utils/rules')
const { shapeLines, totalsText } = require('../../utils/lines')
const { toast } = require('../../utils/list')

Page({
  data: { loading: true, lines: [], general: [], totals: {}, empty: false, canOrder: false, error: '' },

  onShow() {
    return this.load()
  },

  onPullDownRefresh() {
    return this.load().finally(() => wx.stopPullDownRefresh())
  },

  async load() {
    try {
      await session.loadMe()
      await this.show(await api.get('/cart'))
    } catch (err) {
      this.setData({ loading: false, error: err.message })
    }
  },

  async show(cart) {
    const rules = await rulesFor(cart.items.map((line) => line.sku_id))
    const { lines, general } = shapeLines(cart.items, cart.problems, rules)
    this.setData({
      loading: false, error: '', lines, general, totals: totalsText(cart.totals), empty: !lines.length,
      canOrder: session.canOrder() && !session.suspended(),
    })
  },

  async onQtyChange(e) {
    try {
      await this.show(await api.put('/cart/items/' + e.currentTarget.dataset.sku, { qty: e.detail.qty }))
    } catch (err) {
      toast(err.message)
    }
  },

  async onRemove(e) {
    try {
      await this.show(await api.del('/cart/items/' + e.currentTarget.dataset.sku))
    } catch (err) {
      toast(err.message)
    }
  },

  onCheckout() {
    if (!this.data.canOrder || this.data.empty) return
    wx.navigateTo({ url: '/pages/checkout/checkout' })
  },

  onBrowse() {
    wx.switchTab({ url: '/pages/product/list' })
  },
})
