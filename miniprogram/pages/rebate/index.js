// Rebates (GET /rebates): balance, this period's progress per rule ("再订 ¥X 可达下一档"),
// documents and the rebate account's movements.
const { api } = require('../../utils/request')
const { formatFen, formatRate } = require('../../utils/money')
const { chinaTime } = require('../../utils/format')

Page({
  data: { balance: '', progress: [], documents: [], movements: [], error: '' },

  onShow() {
    return this.load()
  },

  onPullDownRefresh() {
    return this.load().finally(() => wx.stopPullDownRefresh())
  },

  async load() {
    try {
      const r = await api.get('/rebates')
      this.setData({
        balance: formatFen(r.balance_fen),
        error: '',
        progress: r.progress_all.map((p) => ({
          rule: p.rule.name, description: p.rule.description, period: p.period_label, amount: formatFen(p.amount_fen),
          rate: formatRate(p.current_rate_bp), estimated: formatFen(p.estimated_rebate_fen),
          next: p.next_tier ? '再订 ' + formatFen(p.next_tier.gap_fen) + ' 可达下一档（' + formatRate(p.next_tier.rate_bp) + '）' : '已达最高档',
        })),
        documents: r.history.documents.map((d) => ({ ...d, rebate_text: formatFen(d.rebate_fen), basis_text: formatFen(d.basis_amount_fen), rate_text: formatRate(d.rate_bp) })),
        movements: r.history.movements.map((m) => ({ ...m, amount_text: formatFen(m.amount_fen), at_text: chinaTime(m.created_at) })),
      })
      return r
    } catch (err) {
      this.setData({ error: err.message })
      return null
    }
  },

  onOpen(e) {
    wx.navigateTo({ url: '/pages/rebate/detail?id=' + e.currentTarget.dataset.id })
  },
})
