// Catalogue: categories, search, the dealer's own price and stock level; pull to refresh,
// more on scrolling (GET /categories, GET /products?category_id=&q=&page=).
const { api } = require('../../utils/request')
const { emptyList, listMethods } = require('../../utils/list')
const { product } = require('../../utils/format')

const PAGE_SIZE = 20

Page({
  data: { categories: [], categoryId: 0, q: '', typed: '', list: emptyList() },

  async onLoad(query) {
    if (query && query.q) this.setData({ q: query.q, typed: query.q })
    try {
      const res = await api.get('/categories')
      this.setData({ categories: [{ id: 0, name: '全部' }].concat(res.items) })
    } catch (err) {
      this.setData({ 'list.error': err.message })
    }
    return this.reload()
  },

  ...listMethods(function (page) {
    return api.get('/products', { page, page_size: PAGE_SIZE, category_id: this.data.categoryId || '', q: this.data.q })
  }, product),

  onCategory(e) {
    this.setData({ categoryId: Number(e.currentTarget.dataset.id) || 0 })
    return this.reload()
  },

  onSearchInput(e) {
    this.setData({ typed: e.detail.value })
  },

  onSearch() {
    this.setData({ q: this.data.typed.trim() })
    return this.reload()
  },

  onOpen(e) {
    wx.navigateTo({ url: '/pages/product/detail?id=' + e.currentTarget.dataset.id })
  },
})
