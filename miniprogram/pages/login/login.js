// First use: wx.login → /auth/login; an unbound WeChat user binds with the invite code the
// brand gave (POST /auth/bind). A bound user goes straight to the home page.
const { login } = require('../../utils/request')
const session = require('../../utils/session')

Page({
  data: { stage: 'logging', inviteCode: '', name: '', error: '', submitting: false },

  async onLoad() {
    await this.start()
  },

  async start() {
    this.setData({ stage: 'logging', error: '' })
    try {
      const res = await login()
      if (res.bound) {
        await session.loadMe({ force: true })
        wx.switchTab({ url: '/pages/index/index' })
        this.setData({ stage: 'done' })
      } else {
        this.setData({ stage: 'bind' })
      }
    } catch (err) {
      this.setData({ stage: 'failed', error: err.message })
    }
  },

  onInviteInput(e) {
    this.setData({ inviteCode: e.detail.value, error: '' })
  },

  onNameInput(e) {
    this.setData({ name: e.detail.value })
  },

  async onBind() {
    const code = this.data.inviteCode.trim()
    if (!code) {
      this.setData({ error: '请输入邀请码' })
      return
    }
    if (this.data.submitting) return
    this.setData({ submitting: true, error: '' })
    try {
      await session.bind(code, this.data.name)
      this.setData({ stage: 'done' })
      wx.switchTab({ url: '/pages/index/index' })
    } catch (err) {
      this.setData({ error: err.message })
    } finally {
      this.setData({ submitting: false })
    }
  },
})
