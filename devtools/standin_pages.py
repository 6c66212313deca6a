"""The stand-in's own page (GET /): log in as a dealer, play the rep, pay, confirm group
messages, and the notifications that reached a (pretend) phone. Part of `devtools.standin`."""
import html
import json
import time

CHANNEL_LABELS = {
    "mp_subscribe": "小程序订阅消息",
    "wecom_app": "企业微信应用消息",
    "wecom_card": "企业微信卡片更新",
    "wecom_robot": "企业微信群机器人",
    "wecom_groupmsg": "客户群群发任务",
}

INDEX_HTML = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>微信接口模拟服务</title>
<style>body{font-family:sans-serif;max-width:48em;margin:2em auto;line-height:1.6}
code{background:#f3f3f3;padding:0 .3em}#out{font-size:1.2em;word-break:break-all}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3em;text-align:left;
vertical-align:top;word-break:break-all}th{white-space:nowrap}</style>
</head>
<body>
<h1>微信接口模拟服务（本地替身）</h1>
<p>这不是微信。它在本机模拟微信与企业微信的服务器：小程序登录（code2Session）、access_token、
小程序订阅消息、企业微信应用消息与模板卡片、群机器人，返回与官方文档一致的 JSON 和错误码，供演示和自动化测试使用。</p>
<h2>模拟小程序登录</h2>
<p>小程序在手机上调用 <code>wx.login()</code> 会得到一个一次性登录码（5 分钟内有效，只能用一次）。
点下面的按钮即可模拟这一步，然后把登录码交给订货系统的登录接口。</p>
<p><label>openid（可留空，留空则随机生成一个新用户）：<br>
<input id="openid" size="40"></label></p>
<p><button id="mint">生成登录码</button></p>
<p id="out"></p>
<h2>模拟业务员（企业微信）</h2>
<p>企业微信把业务员的操作加密后推送到订货系统的回调地址 <code>/wecom/callback</code>。
在下方卡片上点“通过/驳回”，或以业务员身份给“订单助手”发消息（如 <code>待审批</code>、<code>订单 SO…</code>、<code>帮助</code>），
本服务会像企业微信一样加密、签名后推送过去；助手的回复稍后出现在通知列表里。</p>
<p><label>业务员 UserID：<input id="rep" size="16" value="ZhangWei"></label>
<label>消息：<input id="say" size="28" value="待审批"></label> <button id="send">发送</button></p>
<p id="cbout"></p>
<h2>微信支付（模拟）</h2>
<p>经销商对微信支付订单点“付款”后，这里出现一笔待支付的 JSAPI 订单。点“模拟付款”即模拟付款人在微信里输入密码完成支付：
本服务像微信支付一样用平台私钥签名、用 APIv3 密钥加密，把支付成功通知推送到订货系统的 <code>/pay/wechat/notify</code>。</p>
<p id="payout"></p>
<div id="payorders"></div>
<h2>快递100（模拟）</h2>
<p>登记发货后，运单号订阅到这里（<code>/poll</code>）。选一个运单、状态并写一条轨迹，点“推送”即像快递100 一样
用订阅时的 salt 签名，把整条轨迹推送到订货系统的 <code>/logistics/kuaidi100/notify</code>。</p>
<p><label>运单：<select id="kdwaybill"></select></label>
<label>状态：<select id="kdstate"><option value="1">揽收</option><option value="0">在途</option>
<option value="5">派件</option><option value="3">签收</option><option value="2">疑难</option>
<option value="4">退签</option><option value="14">拒签</option></select></label><br>
<label>轨迹：<input id="kdcontext" size="40" value="快件已到达【上海转运中心】"></label>
<button id="kdpush">推送</button></p>
<p id="kdout"></p>
<h2>客户群群发（模拟业务员确认）</h2>
<p>订货系统创建的客户群群发任务要由群主（业务员）在企业微信「群发助手」里确认后才会发出。点“以业务员身份发送”即模拟这一步。</p>
<p id="gmout"></p>
<div id="groupmsg"></div>
<h2>最近送达的通知</h2>
<p>经销商收到的小程序订阅消息、业务员收到的企业微信消息和卡片、内部群机器人消息都会出现在这里（每 3 秒刷新）。</p>
<div id="delivered">{delivered}</div>
<script>
async function pushCallback(path, payload) {
  var res = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(payload)});
  var data = await res.json();
  document.getElementById("cbout").textContent = data.message;
}
function tap(user, key) { pushCallback("/_standin/wecom/tap", {user: user, key: key}); }
document.getElementById("send").onclick = function () {
  pushCallback("/_standin/wecom/say", {user: document.getElementById("rep").value.trim(),
                                       content: document.getElementById("say").value});
};
document.getElementById("mint").onclick = async function () {
  var openid = document.getElementById("openid").value.trim();
  var res = await fetch("/_standin/wx/login", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(openid ? {openid: openid} : {})
  });
  var data = await res.json();
  document.getElementById("out").textContent = "登录码：" + data.code;
};
async function payOrder(no) {
  var res = await fetch("/_standin/pay/" + encodeURIComponent(no) + "/pay", {method: "POST"});
  var data = await res.json();
  document.getElementById("payout").textContent = data.message;
}
async function settleRefund(no, status) {
  var res = await fetch("/_standin/pay/refunds/" + encodeURIComponent(no) + "/settle?status=" + status, {method: "POST"});
  var data = await res.json();
  document.getElementById("payout").textContent = data.message;
}
async function refreshPay() {
  var res = await fetch("/_standin/pay/orders?format=html");
  if (res.ok) { document.getElementById("payorders").innerHTML = await res.text(); }
}
refreshPay();
setInterval(refreshPay, 3000);
async function confirmTask(msgid, userid) {
  var res = await fetch("/_standin/wecom/groupmsg/confirm", {method: "POST", headers: {"Content-Type": "application/json"},
                        body: JSON.stringify({msgid: msgid, userid: userid})});
  var data = await res.json();
  document.getElementById("gmout").textContent = data.message;
  refreshGroupMsg();
}
async function refreshGroupMsg() {
  var res = await fetch("/_standin/wecom/groupmsg?format=html");
  if (res.ok) { document.getElementById("groupmsg").innerHTML = await res.text(); }
}
refreshGroupMsg();
setInterval(refreshGroupMsg, 3000);
async function refreshWaybills() {
  var res = await fetch("/_standin/kuaidi100/subscriptions");
  if (!res.ok) { return; }
  var subs = await res.json(), select = document.getElementById("kdwaybill"), chosen = select.value;
  select.innerHTML = "";
  subs.forEach(function (s) {
    var option = document.createElement("option");
    option.value = s.company + " " + s.number;
    option.textContent = s.company + " " + s.number + "（" + s.data.length + " 条轨迹）";
    select.appendChild(option);
  });
  if (chosen) { select.value = chosen; }
}
refreshWaybills();
setInterval(refreshWaybills, 3000);
document.getElementById("kdpush").onclick = async function () {
  var waybill = document.getElementById("kdwaybill").value.split(" ");
  if (waybill.length < 2) { document.getElementById("kdout").textContent = "还没有订阅的运单（先在后台登记发货）"; return; }
  var res = await fetch("/_standin/kuaidi100/push", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({company: waybill[0], number: waybill[1], state: parseInt(document.getElementById("kdstate").value, 10),
                          context: document.getElementById("kdcontext").value})});
  var data = await res.json();
  document.getElementById("kdout").textContent = data.message;
  refreshWaybills();
};
setInterval(async function () {
  var res = await fetch("/_standin/delivered?format=html");
  if (res.ok) { document.getElementById("delivered").innerHTML = await res.text(); }
}, 3000);
</script>
</body>
</html>
"""


def _delivered_html(entries):
    if not entries:
        return "<p>还没有收到任何通知。</p>"
    rows = []
    for entry in reversed(entries):
        at = time.strftime("%H:%M:%S", time.localtime(entry["at"]))
        to = entry["to"] if isinstance(entry["to"], str) else "、".join(entry["to"])
        rows.append(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>".format(
                at, CHANNEL_LABELS.get(entry["channel"], entry["channel"]), html.escape(to),
                html.escape(entry["summary"]).replace("\n", "<br>"), _card_buttons(entry),
            )
        )
    return "<table><tr><th>时间</th><th>渠道</th><th>接收人</th><th>内容</th></tr>" + "".join(rows) + "</table>"


def _card_buttons(entry):
    """Buttons that play the rep tapping a delivered button card (through the callback)."""
    card = (entry.get("body") or {}).get("template_card") if entry["channel"] == "wecom_app" else None
    if not isinstance(card, dict) or not isinstance(entry["to"], str):
        return ""
    buttons = [
        "<button onclick='tap({}, {})'>{}</button>".format(
            html.escape(json.dumps(entry["to"])), html.escape(json.dumps(b.get("key", ""))), html.escape(b.get("text", ""))
        )
        for b in card.get("button_list") or [] if isinstance(b, dict)
    ]
    return "<br>" + " ".join(buttons) if buttons else ""
