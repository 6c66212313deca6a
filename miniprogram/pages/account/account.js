// 我的: credit (limit, used, available), receivable, prepaid and rebate balances (GET /account),
// and the way to the ledger, statements, rebates, policies, materials and messages.
const { api } = require('../../utils/request')
const session = require('../../utils/session')
const { formatFen } = require('../../utils/money')
const { ROLE_LABELS } = require('../../utils/format')

Page({
  data: { me: null, roleLabel: '', balances: null, error: '' },

  onShow() {
    return this.load()
  },

  onPullDownRefresh() {
    return this.load(true).finally(() => wx.stopPullDownRefresh())
  },

  async load(force) {
    try {
      const me = await session.loadMe({ force: !!force })
      const account = await api.get('/account')
      this.setData({
        me, roleLabel: ROLE_LABELS[me.user.role] || me.user.role, error: '',
        balances: {
          credit_limit: formatFen(account.credit.limit_fen),
          credit_used: formatFen(account.credit.used_fen),
          credit_available: formatFen(account.credit.available_fen),
          receivable: formatFen(account.accounts.receivable_fen),
          prepaid: formatFen(account.accounts.prepaid_fen),
          rebate: formatFen(account.accounts.rebate_fen),
        },
      })
      return account
    } catch (err) {
      this.setData({ error: err.message })
      return null
    }
  },

  onOpen(e) {
    wx.navigateTo({ url: e.currentTarget.dataset.url })
  },
})
