// The dealer's ledger (GET /account/ledger?account=), newest first, by account.
const { api } = require('../../utils/request')
const { emptyList, listMethods } = require('../../utils/list')
const { formatFen } = require('../../utils/money')
const { chinaTime } = require('../../utils/format')

const ACCOUNTS = [
  { account: '', label: '全部' },
  { account: 'receivable', label: '应收账款' },
  { account: 'prepaid', label: '预付款' },
  { account: 'rebate', label: '返利' },
]

Page({
  data: { accounts: ACCOUNTS, account: '', list: emptyList() },

  onLoad(query) {
    this.setData({ account: (query && query.account) || '' })
    return this.reload()
  },

  ...listMethods(function (page) {
    return api.get('/account/ledger', { page, page_size: 20, account: this.data.account })
  }, (e) => ({ ...e, amount_text: (e.amount_fen > 0 ? '+' : '') + formatFen(e.amount_fen), balance_text: formatFen(e.balance_after_fen), at_text: chinaTime(e.created_at) })),

  onTab(e) {
    this.setData({ account: e.currentTarget.dataset.account })
    return this.reload()
  },
})
