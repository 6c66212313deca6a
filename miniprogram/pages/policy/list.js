// Policies addressed to the dealer (GET /policies), unread first, by category.
const { api } = require('../../utils/request')
const { emptyList, listMethods } = require('../../utils/list')
const { chinaTime } = require('../../utils/format')

const CATEGORIES = [
  { category: '', label: '全部' },
  { category: 'channel', label: '渠道政策' },
  { category: 'price', label: '价格政策' },
  { category: 'promotion', label: '促销通知' },
]

Page({
  data: { categories: CATEGORIES, category: '', unread: 0, list: emptyList() },

  onShow() {
    return this.reload()
  },

  ...listMethods(async function (page) {
    const res = await api.get('/policies', { page, page_size: 20, category: this.data.category })
    this.setData({ unread: res.unread })
    return res
  }, (p) => ({ ...p, published_text: chinaTime(p.published_at) })),

  onTab(e) {
    this.setData({ category: e.currentTarget.dataset.category })
    return this.reload()
  },

  onOpen(e) {
    wx.navigateTo({ url: '/pages/policy/detail?id=' + e.currentTarget.dataset.id })
  },
})
