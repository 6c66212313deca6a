// Monthly statements (GET /statements), newest month first.
const { api } = require('../../utils/request')
const { emptyList, listMethods } = require('../../utils/list')
const { formatFen } = require('../../utils/money')

Page({
  data: { list: emptyList() },

  onShow() {
    return this.reload()
  },

  ...listMethods((page) => api.get('/statements', { page, page_size: 20 }), (s) => ({
    ...s, receivable_text: formatFen(s.closing_receivable_fen), prepaid_text: formatFen(s.closing_prepaid_fen), rebate_text: formatFen(s.closing_rebate_fen),
  })),

  onOpen(e) {
    wx.navigateTo({ url: '/pages/statement/detail?id=' + e.currentTarget.dataset.id })
  },
})
