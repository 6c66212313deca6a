// One rebate document (GET /rebates/<id>) and what it counted: shipments, paid orders, returns.
const { api } = require('../../utils/request')
const { formatFen, formatRate } = require('../../utils/money')
const { chinaTime } = require('../../utils/format')

Page({
  data: { doc: null, lines: [], error: '' },

  async onLoad(query) {
    try {
      const doc = await api.get('/rebates/' + query.id)
      this.setData({
        doc: { ...doc, rebate_text: formatFen(doc.rebate_fen), basis_text: formatFen(doc.basis_amount_fen), rate_text: formatRate(doc.rate_bp) },
        lines: doc.lines.map((l) => ({ ...l, amount_text: formatFen(l.amount_fen), at_text: chinaTime(l.happened_at) })),
      })
      return doc
    } catch (err) {
      this.setData({ error: err.message })
      return null
    }
  },
})
