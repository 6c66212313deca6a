// Checkout: the server's preview (POST /checkout/preview) after every change — every problem
// beside its line, address, payment method, rebate deduction — then submit (POST /orders)
// with one Idempotency-Key for this checkout (utils/checkout.js), so a double tap or a retry
// never makes two orders. After submitting: ask for subscribe messages, then pay or open it.
const { api } = require('../../utils/request')
const session = require('../../utils/session')
const { createCheckout } = require('../../utils/checkout')
const { askAt } = require('../../utils/subscribe')
const { rulesFor } = require('../../utils/rules')
const { shapeLines, totalsText } = require('../../utils/lines')
const { formatFen, parseYuan, formatRate } = require('../../utils/money')
const { PAYMENT_METHODS } = require('../../utils/format')
const { toast } = require('../../utils/list')

Page({
  data: {
    loading: true, lines: [], general: [], totals: {}, payment: null, ok: false,
    addresses: [], addressIndex: 0, methods: PAYMENT_METHODS, methodIndex: 0,
    rebateText: '', remark: '', submitting: false, error: '', order: null,
  },

  async onLoad() {
    this.checkout = createCheckout()
    try {
      await session.loadMe()
      const [cart, addresses] = await Promise.all([api.get('/cart'), api.get('/addresses')])
      this.rules = await rulesFor(cart.items.map((l) => l.sku_id))
      this.quantities = cart.items.map((l) => ({ sku_id: l.sku_id, qty: l.qty }))
      this.setData({ addresses: addresses.items.map((a) => ({ ...a, text: a.contact_name + ' ' + a.phone + ' ' + a.region_names + a.detail })) })
      await this.preview()
    } catch (err) {
      this.setData({ loading: false, error: err.message })
    }
  },

  body() {
    const address = this.data.addresses[this.data.addressIndex]
    const body = {
      lines: this.quantities.map((l) => ({ sku_id: l.sku_id, qty: l.qty })),
      payment_method: PAYMENT_METHODS[this.data.methodIndex].value,
      use_rebate_fen: parseYuan(this.data.rebateText) || 0,
    }
    if (address) body.address_id = address.id
    return body
  },

  /** POST /checkout/preview with what is chosen now; shows every problem at once. */
  async preview() {
    if (!this.quantities.length) {
      this.setData({ loading: false, lines: [], ok: false, general: ['购物车是空的'] })
      return null
    }
    try {
      const res = await api.post('/checkout/preview', this.body())
      this.showPriced(res.lines, res.problems, res.totals)
      this.setData({ ok: res.ok, payment: paymentText(res.payment), loading: false, error: '' })
      return res
    } catch (err) {
      this.setData({ loading: false, error: err.message, ok: false })
      return null
    }
  },

  showPriced(lines, problems, totals) {
    const shaped = shapeLines(lines, problems, this.rules)
    this.setData({ lines: shaped.lines, general: shaped.general, totals: totalsText(totals) })
  },

  /** Fix a line's quantity (the stepper only offers valid ones); the cart follows. */
  async onQtyChange(e) {
    const sku = Number(e.currentTarget.dataset.sku)
    const qty = e.detail.qty
    this.quantities = this.quantities.map((l) => (l.sku_id === sku ? { sku_id: sku, qty } : l))
    api.put('/cart/items/' + sku, { qty }).catch(() => {})
    return this.preview()
  },

  onAddress(e) {
    this.setData({ addressIndex: Number(e.detail.value) })
    return this.preview()
  },

  onMethod(e) {
    this.setData({ methodIndex: Number(e.detail.value) })
    return this.preview()
  },

  onRebateInput(e) {
    this.setData({ rebateText: e.detail.value })
  },

  onRebateMax() {
    const p = this.data.payment
    if (p) this.setData({ rebateText: p.rebate_max_yuan })
    return this.preview()
  },

  onRemark(e) {
    this.setData({ remark: e.detail.value })
  },

  /** POST /orders with this checkout's Idempotency-Key (reused on every retry). */
  async onSubmit() {
    if (this.data.submitting || !session.canOrder()) return null
    if (!this.data.ok) {
      toast('请先处理标红的问题')
      return null
    }
    this.setData({ submitting: true, error: '' })
    try {
      const { order } = await this.checkout.submit({ ...this.body(), remark: this.data.remark })
      this.setData({ order })
      await askAt('submitted')
      const url = order.totals.due_fen > 0 && (order.payment_method === 'wechat' || order.payment_method === 'offline')
        ? '/pages/pay/pay?order_no=' + order.order_no
        : '/pages/order/detail?order_no=' + order.order_no
      wx.redirectTo({ url })
      return order
    } catch (err) {
      if (err.problems.length) this.showPriced(this.data.lines, err.problems, null)
      this.setData({ error: err.message })
      toast(err.message)
      return null
    } finally {
      this.setData({ submitting: false })
    }
  },
})

function paymentText(p) {
  if (!p) return null
  return {
    ...p,
    method_label: p.method_label,
    total_text: formatFen(p.total_fen),
    rebate_text: formatFen(p.rebate_fen),
    payable_text: formatFen(p.payable_fen),
    rebate_available_text: formatFen(p.rebate_available_fen),
    rebate_max_text: formatFen(p.rebate_max_fen),
    rebate_max_yuan: formatFen(p.rebate_max_fen, { symbol: '' }).replace(/,/g, ''),
    rebate_rate_text: formatRate(p.rebate_rate_bp),
    prepaid_available_text: formatFen(p.prepaid_available_fen),
  }
}
