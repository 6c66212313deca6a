// The dealer storefront. Pages talk to the API only through utils/request.js;
// who is signed in (GET /me) is kept by utils/session.js.
const session = require('./utils/session')

App({
  onLaunch() {
    session.ensureLoggedIn().catch(() => {})
  },
  session,
})
