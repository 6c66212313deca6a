// My orders by status (GET /orders?status=&page=), newest first; pull to refresh, scroll for more.
const { api } = require('../../utils/request')
const { emptyList, listMethods } = require('../../utils/list')
const { formatFen } = require('../../utils/money')
const { chinaTime } = require('../../utils/format')

const TABS = [
  { status: '', label: '全部' },
  { status: 'pending_approval', label: '待审批' },
  { status: 'approved', label: '待发货' },
  { status: 'partially_shipped', label: '部分发货' },
  { status: 'shipped', label: '待收货' },
  { status: 'completed', label: '已完成' },
  { status: 'cancelled', label: '已取消' },
  { status: 'rejected', label: '已驳回' },
]

Page({
  data: { tabs: TABS, status: '', list: emptyList() },

  onLoad(query) {
    if (query && query.status) this.setData({ status: query.status })
  },

  onShow() {
    return this.reload()
  },

  ...listMethods(function (page) {
    return api.get('/orders', { page, page_size: 20, status: this.data.status })
  }, (o) => ({ ...o, total_text: formatFen(o.total_fen), created_text: chinaTime(o.created_at) })),

  onTab(e) {
    this.setData({ status: e.currentTarget.dataset.status })
    return this.reload()
  },

  onOpen(e) {
    wx.navigateTo({ url: '/pages/order/detail?order_no=' + e.currentTarget.dataset.no })
  },
})
