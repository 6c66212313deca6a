/**
 * A paginated list on a page: pull to refresh reloads, scrolling to the bottom loads the next
 * page. `load(page)` (called with the page as `this`) resolves with an API page
 * {items, page, page_size, total}; `map` turns an item into what the template shows.
 * The state is `data.list`: {items, page, total, loading, done, empty, error}.
 */
function emptyList() {
  return { items: [], page: 0, total: 0, loading: false, done: false, empty: false, error: '' }
}

function listMethods(load, map) {
  const shape = map || ((x) => x)
  return {
    async reload() {
      this.setData({ 'list.loading': true, 'list.error': '' })
      try {
        const res = await load.call(this, 1)
        const items = res.items.map(shape)
        this.setData({
          list: { items, page: 1, total: res.total, loading: false, done: items.length >= res.total, empty: res.total === 0, error: '' },
        })
      } catch (err) {
        this.setData({ 'list.loading': false, 'list.error': err.message })
      } finally {
        wx.stopPullDownRefresh()
      }
    },
    async more() {
      const list = this.data.list
      if (list.loading || list.done) return
      this.setData({ 'list.loading': true })
      try {
        const res = await load.call(this, list.page + 1)
        const items = list.items.concat(res.items.map(shape))
        this.setData({
          list: { items, page: list.page + 1, total: res.total, loading: false, done: items.length >= res.total || !res.items.length, empty: res.total === 0, error: '' },
        })
      } catch (err) {
        this.setData({ 'list.loading': false, 'list.error': err.message })
      }
    },
    onPullDownRefresh() {
      return this.reload()
    },
    onReachBottom() {
      return this.more()
    },
  }
}

function toast(message) {
  wx.showToast({ title: message, icon: 'none', duration: 2500 })
}

module.exports = { emptyList, listMethods, toast }
