// Home: what needs attention — policies to acknowledge, orders awaiting payment or receipt,
// statements to confirm, rebate progress ("再订 ¥X 可达下一档") — and quick reorder.
const { api } = require('../../utils/request')
const session = require('../../utils/session')
const { formatFen, formatRate } = require('../../utils/money')
const { ROLE_LABELS } = require('../../utils/format')
const { toast } = require('../../utils/list')

Page({
  data: { loading: true, me: null, roleLabel: '', suspended: false, canOrder: false, attention: [], progress: null, recent: [], error: '' },

  onShow() {
    return this.load()
  },

  onPullDownRefresh() {
    return this.load(true).finally(() => wx.stopPullDownRefresh())
  },

  async load(force) {
    try {
      const me = await session.loadMe({ force: !!force || !this.data.me })
      this.setData({ me, roleLabel: ROLE_LABELS[me.user.role] || me.user.role, suspended: session.suspended(), canOrder: session.canOrder() })
      const [policies, shipped, pending, statements, rebates, recent] = await Promise.all([
        api.get('/policies', { page_size: 20 }),
        api.get('/orders', { status: 'shipped', page_size: 5 }),
        api.get('/orders', { status: 'pending_approval', page_size: 5 }),
        api.get('/statements', { status: 'pending', page_size: 5 }),
        api.get('/rebates').catch(() => null),
        api.get('/orders', { page_size: 3 }),
      ])
      const attention = []
      policies.items.filter((p) => p.ack_required && !p.acked).forEach((p) => attention.push({ kind: '政策待确认', title: p.title, url: '/pages/policy/detail?id=' + p.id }))
      shipped.items.forEach((o) => attention.push({ kind: '待收货', title: o.order_no + ' ' + formatFen(o.total_fen), url: '/pages/order/detail?order_no=' + o.order_no }))
      pending.items.forEach((o) => attention.push({ kind: '待审批', title: o.order_no + ' ' + formatFen(o.total_fen), url: '/pages/order/detail?order_no=' + o.order_no }))
      statements.items.forEach((s) => attention.push({ kind: '对账单待确认', title: s.month + ' ' + s.statement_no, url: '/pages/statement/detail?id=' + s.id }))
      this.setData({ attention, progress: progressText(rebates && rebates.progress), recent: recent.items.map((o) => ({ ...o, total_text: formatFen(o.total_fen) })), loading: false, error: '' })
    } catch (err) {
      this.setData({ loading: false, error: err.message })
    }
  },

  onOpen(e) {
    wx.navigateTo({ url: e.currentTarget.dataset.url })
  },

  /** Quick reorder: put a recent order's lines back in the cart at their quantities. */
  async onReorder(e) {
    if (!session.canOrder()) return
    const orderNo = e.currentTarget.dataset.no
    try {
      const order = await api.get('/orders/' + orderNo)
      for (const line of order.lines) {
        if (line.unit_price_fen === 0 && line.amount_fen === 0) continue // gifts come with the promotion
        await api.put('/cart/items/' + line.sku_id, { qty: line.qty })
      }
      wx.switchTab({ url: '/pages/cart/cart' })
    } catch (err) {
      toast(err.message)
    }
  },
})

function progressText(progress) {
  if (!progress) return null
  const next = progress.next_tier
  return {
    rule: progress.rule.name,
    period: progress.period_label,
    amount: formatFen(progress.amount_fen),
    rate: formatRate(progress.current_rate_bp),
    estimated: formatFen(progress.estimated_rebate_fen),
    next: next ? '再订 ' + formatFen(next.gap_fen) + ' 可达下一档（' + formatRate(next.rate_bp) + '，预计返利 ' + formatFen(next.estimated_rebate_fen) + '）' : '已达最高档',
  }
}
