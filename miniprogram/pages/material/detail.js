// One material (GET /materials/<id>) and forwarding it to a customer group
// (POST /materials/<id>/share says how, and counts the forward): images and posters through
// wx.showShareImageMenu or saved to the album (the album permission prompt handled), videos
// and files through wx.shareVideoMessage / wx.shareFileMessage, cards through onShareAppMessage.
const { api } = require('../../utils/request')
const { chinaTime } = require('../../utils/format')
const { toast } = require('../../utils/list')

Page({
  data: { material: null, share: null, error: '' },

  async onLoad(query) {
    this.id = query.id
    try {
      const material = await api.get('/materials/' + query.id)
      this.setData({ material: { ...material, published_text: chinaTime(material.published_at) } })
      wx.setNavigationBarTitle({ title: material.title })
      return material
    } catch (err) {
      this.setData({ error: err.message })
      return null
    }
  },

  async prepareShare() {
    const share = await api.post('/materials/' + this.id + '/share')
    this.setData({ share })
    return share
  },

  async onShare() {
    try {
      const share = await this.prepareShare()
      if (share.method === 'share_image_menu') {
        const path = await download(share.images[0].url)
        wx.showShareImageMenu({ path })
      } else if (share.method === 'share_video_message') {
        wx.shareVideoMessage({ videoPath: await download(share.video.url), thumbPath: share.video.thumb_url || undefined })
      } else if (share.method === 'share_file_message') {
        wx.shareFileMessage({ filePath: await download(share.file.url), fileName: share.file.file_name })
      } else {
        toast('请点右上角 ··· 转发给客户群')
      }
      return share
    } catch (err) {
      toast(err.message || '转发失败，请重试')
      return null
    }
  },

  /** Save a picture or poster to the album, asking for the permission (or sending to 设置) first. */
  async onSaveImage() {
    const file = this.data.material && this.data.material.file
    if (!file) return false
    try {
      await albumPermission()
      const path = await download(file.url)
      await new Promise((resolve, reject) => wx.saveImageToPhotosAlbum({ filePath: path, success: resolve, fail: reject }))
      wx.showToast({ title: '已保存到相册', icon: 'success' })
      return true
    } catch (err) {
      toast(err.message || '保存失败')
      return false
    }
  },

  /** The card the API gives (and the forward counted); until it answers, this page's own. */
  onShareAppMessage() {
    const m = this.data.material
    const fallback = { title: m ? m.title : '营销素材', path: '/pages/material/detail?id=' + this.id }
    return {
      ...fallback,
      promise: this.prepareShare().then((share) => share.share_app_message || fallback, () => fallback),
    }
  },

  onPreview() {
    const file = this.data.material.file
    if (file) wx.previewImage({ urls: [file.url] })
  },
})

function download(url) {
  return new Promise((resolve, reject) => {
    wx.downloadFile({
      url,
      success: (res) => (res.statusCode === 200 ? resolve(res.tempFilePath) : reject(new Error('文件下载失败'))),
      fail: () => reject(new Error('文件下载失败，请检查网络')),
    })
  })
}

function albumPermission() {
  return new Promise((resolve, reject) => {
    wx.getSetting({
      success: (res) => {
        const granted = res.authSetting['scope.writePhotosAlbum']
        if (granted) return resolve()
        if (granted === false) {
          // Refused before: only 设置 can grant it now.
          wx.showModal({
            title: '需要相册权限', content: '请在设置中允许保存到相册', confirmText: '去设置',
            success: (m) => (m.confirm ? wx.openSetting({ success: (s) => (s.authSetting['scope.writePhotosAlbum'] ? resolve() : reject(new Error('未允许保存到相册'))) }) : reject(new Error('未允许保存到相册'))),
          })
          return null
        }
        wx.authorize({ scope: 'scope.writePhotosAlbum', success: resolve, fail: () => reject(new Error('未允许保存到相册')) })
        return null
      },
      fail: () => reject(new Error('无法读取权限设置')),
    })
  })
}
