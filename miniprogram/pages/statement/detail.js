// One statement (GET /statements/<id>): each account's opening, the month by category with
// its lines, closing; confirm (POST …/confirm) or dispute with a comment (POST …/dispute).
const { api } = require('../../utils/request')
const session = require('../../utils/session')
const { formatFen } = require('../../utils/money')
const { chinaTime } = require('../../utils/format')
const { toast } = require('../../utils/list')

Page({
  data: { statement: null, accounts: [], events: [], canAct: false, disputing: false, comment: '', error: '', busy: false },

  async onLoad(query) {
    this.id = query.id
    await session.loadMe().catch(() => null)
    return this.load()
  },

  async load() {
    try {
      return this.show(await api.get('/statements/' + this.id))
    } catch (err) {
      this.setData({ error: err.message })
      return null
    }
  },

  show(s) {
    this.setData({
      statement: s,
      error: '',
      canAct: session.canOrder() && s.status === 'pending',
      accounts: s.accounts.map((a) => ({
        ...a, opening_text: formatFen(a.opening_fen), movement_text: formatFen(a.movement_fen), closing_text: formatFen(a.closing_fen),
        groups: a.groups.map((g) => ({ ...g, total_text: formatFen(g.total_fen), lines: g.lines.map((l) => ({ ...l, amount_text: formatFen(l.amount_fen), at_text: chinaTime(l.occurred_at) })) })),
      })),
      events: s.events.map((e) => ({ ...e, at_text: chinaTime(e.at) })),
    })
    return s
  },

  async onConfirm() {
    return this.act(() => api.post('/statements/' + this.id + '/confirm'), '已确认')
  },

  onStartDispute() {
    this.setData({ disputing: true })
  },

  onComment(e) {
    this.setData({ comment: e.detail.value })
  },

  async onDispute() {
    if (!this.data.comment.trim()) {
      this.setData({ error: '请填写异议说明，如哪一笔金额不符' })
      return null
    }
    return this.act(() => api.post('/statements/' + this.id + '/dispute', { comment: this.data.comment.trim() }), '已提交异议')
  },

  async act(call, done) {
    if (this.data.busy) return null
    this.setData({ busy: true })
    try {
      const s = this.show(await call())
      this.setData({ disputing: false })
      wx.showToast({ title: done, icon: 'success' })
      return s
    } catch (err) {
      toast(err.message)
      this.setData({ error: err.message })
      return null
    } finally {
      this.setData({ busy: false })
    }
  },

  onPrint() {
    wx.setClipboardData({ data: this.data.statement.print_url })
  },
})
