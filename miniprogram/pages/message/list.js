// Messages (GET /messages): approvals, rejections, shipments, payment reminders; each opens its page.
const { api } = require('../../utils/request')
const { emptyList, listMethods } = require('../../utils/list')
const { chinaTime } = require('../../utils/format')

Page({
  data: { list: emptyList() },

  onShow() {
    return this.reload()
  },

  ...listMethods((page) => api.get('/messages', { page, page_size: 20 }), (m) => ({ ...m, at_text: chinaTime(m.created_at) })),

  onOpen(e) {
    const page = e.currentTarget.dataset.page
    if (page) wx.navigateTo({ url: page.charAt(0) === '/' ? page : '/' + page })
  },
})
