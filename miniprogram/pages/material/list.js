// Marketing materials addressed to the dealer (GET /materials?q=&tag=&kind=), newest first.
const { api } = require('../../utils/request')
const { emptyList, listMethods } = require('../../utils/list')
const { chinaTime } = require('../../utils/format')

Page({
  data: { tags: [], tag: '', q: '', list: emptyList() },

  onLoad(query) {
    if (query && query.tag) this.setData({ tag: query.tag })
    return this.reload()
  },

  ...listMethods(async function (page) {
    const res = await api.get('/materials', { page, page_size: 20, q: this.data.q, tag: this.data.tag })
    this.setData({ tags: [{ tag: '', count: 0 }].concat(res.tags) })
    return res
  }, (m) => ({ ...m, published_text: chinaTime(m.published_at) })),

  onSearchInput(e) {
    this.setData({ q: e.detail.value })
  },

  onSearch() {
    return this.reload()
  },

  onTag(e) {
    this.setData({ tag: e.currentTarget.dataset.tag })
    return this.reload()
  },

  onOpen(e) {
    wx.navigateTo({ url: '/pages/material/detail?id=' + e.currentTarget.dataset.id })
  },
})
