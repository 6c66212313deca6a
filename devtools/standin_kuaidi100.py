"""The stand-in's Kuaidi100 (快递100) subscribe-and-push service, part of `devtools.standin`.

Route (as poll.kuaidi100.com answers it):
    POST /poll    form `schema=json&param=<JSON>`; param {company, number, key, parameters:
                  {callbackurl, salt, resultv2, phone}} -> {"result", "returnCode", "message"}:
                  200 提交成功; 501 重复订阅 (still polling); 600 key wrong; 700 bad data
                  (unknown company code, number not 6–32 characters, callback URL not http(s),
                  SF Express without phone)
Control routes (not Kuaidi100):
    POST /_standin/kuaidi100/push   {"company", "number", "state", "context", optional "time"
                                    ("2026-12-01 10:00:00", China), "area_name", "status"}:
                                    one more trail line for a subscribed waybill, then the whole
                                    trail (newest first) POSTed to its callbackurl as Kuaidi100
                                    pushes it: `param=<JSON>&sign=MD5(param + salt)` upper-case
    POST /_standin/kuaidi100/fail   {"return_code": "600", "times": 1}: the next subscriptions
                                    answer that code
    GET  /_standin/kuaidi100/subscriptions  the waybills subscribed, their trails and pushes

The push is signed by `app.integrations.kuaidi100.sign`'s rule written out here again (this
module plays the other side and imports nothing of the app but the clock).
"""
import hashlib
import json
import re
import threading

import requests
from flask import jsonify, request

from app.kernel import clock

COMPANY = re.compile(r"^[a-z0-9]{2,20}$")
RETURN_MESSAGES = {
    "200": "提交成功", "501": "重复订阅", "500": "服务器错误", "600": "您不是合法的订阅者（即授权Key出错）",
    "601": "POLL:KEY已过期", "700": "订阅方的订阅数据存在错误（如不支持的快递公司、单号为空、单号超长等）或错误的回调地址",
    "701": "拒绝订阅的快递公司", "702": "POLL:识别不到该单号对应的快递公司",
}
STATE_WORDS = {0: "在途", 1: "揽收", 2: "疑难", 3: "签收", 4: "退签", 5: "派件", 6: "退回", 8: "清关", 14: "拒签"}
PUSH_STATUSES = ("polling", "shutdown", "abort", "updateall")


def md5_sign(param_text, salt):
    return hashlib.md5((param_text + salt).encode("utf-8")).hexdigest().upper()


class Kuaidi100State:
    """The customer's key, the waybills subscribed with it, scripted failures; under the lock."""

    def __init__(self, key="demo-kuaidi100-key"):
        self.key = key
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self.subscriptions = {}  # (company, number) -> dict
            self.faults = []  # return codes for the next subscriptions
            self.requests = []  # the /poll forms received

    def fail_next(self, return_code, times=1):
        with self._lock:
            self.faults += [str(return_code)] * times

    def subscribe(self, form):
        """(returnCode, message) for one /poll form."""
        with self._lock:
            self.requests.append(dict(form))
            if form.get("schema", "json") != "json":
                return "700", "schema 只能是 json"
            try:
                param = json.loads(form.get("param") or "")
            except ValueError:
                return "700", RETURN_MESSAGES["700"]
            if not isinstance(param, dict):
                return "700", RETURN_MESSAGES["700"]
            if param.get("key") != self.key:
                return "600", RETURN_MESSAGES["600"]
            if self.faults:
                code = self.faults.pop(0)
                return code, RETURN_MESSAGES.get(code, "模拟故障")
            company, number = str(param.get("company") or ""), str(param.get("number") or "")
            parameters = param.get("parameters") if isinstance(param.get("parameters"), dict) else {}
            callback = str(parameters.get("callbackurl") or "")
            if not COMPANY.match(company) or not 6 <= len(number) <= 32 or not callback.startswith(("http://", "https://")):
                return "700", RETURN_MESSAGES["700"]
            if company == "shunfeng" and not parameters.get("phone"):
                return "700", "顺丰单号需提供收、寄件人的电话号码（phone）"
            known = self.subscriptions.get((company, number))
            if known and known["status"] == "polling":
                return "501", RETURN_MESSAGES["501"]
            self.subscriptions[(company, number)] = {
                "company": company, "number": number, "callbackurl": callback, "salt": str(parameters.get("salt") or ""),
                "phone": parameters.get("phone"), "resultv2": parameters.get("resultv2"), "status": "polling",
                "data": [], "state": 0, "pushes": [],
            }
            return "200", RETURN_MESSAGES["200"]

    def push_form(self, company, number, *, state, context, time=None, area_name=None, status=None):
        """Add a trail line to a subscribed waybill and return the push's form (param, sign), or None."""
        with self._lock:
            sub = self.subscriptions.get((company, number))
            if sub is None:
                return None
            text = time or clock.now().astimezone(clock.BUSINESS_TZ).strftime("%Y-%m-%d %H:%M:%S")
            sub["data"].insert(0, {"context": context, "time": text, "ftime": text, "areaCode": None,
                                   "areaName": area_name, "status": STATE_WORDS.get(state, "在途")})
            sub["state"] = state
            if status is None:
                status = "shutdown" if state == 3 else "polling"
            sub["status"] = status
            param = {
                "status": status, "billstatus": "got", "message": "", "autoCheck": "0", "comOld": "", "comNew": "",
                "lastResult": {"message": "ok", "nu": number, "ischeck": "1" if state == 3 else "0", "com": company,
                               "status": "200", "state": str(state), "data": [dict(d) for d in sub["data"]]},
            }
            param_text = json.dumps(param, ensure_ascii=False, separators=(",", ":"))
            return {"param": param_text, "sign": md5_sign(param_text, sub["salt"])}, sub["callbackurl"]

    def push(self, company, number, **line):
        """Push to the waybill's callbackurl over HTTP: (HTTP status or None, callback's JSON or text)."""
        made = self.push_form(company, number, **line)
        if made is None:
            return None, "该单号未订阅"
        form, url = made
        try:
            resp = requests.post(url, data=form, timeout=10)
        except requests.RequestException as exc:
            answer = (None, f"推送到回调地址失败：{exc.__class__.__name__}")
        else:
            try:
                answer = (resp.status_code, resp.json())
            except ValueError:
                answer = (resp.status_code, resp.text[:200])
        with self._lock:
            self.subscriptions[(company, number)]["pushes"].append({"http_status": answer[0], "answer": answer[1]})
        return answer

    def listing(self):
        with self._lock:
            return [dict(sub) for sub in self.subscriptions.values()]


def register_kuaidi100_routes(app, state):
    @app.post("/poll")
    def kuaidi100_poll():
        code, message = state.subscribe(request.form)
        return jsonify({"result": code == "200", "returnCode": code, "message": message})

    @app.post("/_standin/kuaidi100/push")
    def kuaidi100_push():
        body = request.get_json(force=True, silent=True) or {}
        company, number = str(body.get("company") or ""), str(body.get("number") or "")
        context = str(body.get("context") or "").strip()
        state_code = body.get("state", 0)
        status = body.get("status")
        if not company or not number or not context or type(state_code) is not int or (
                status is not None and status not in PUSH_STATUSES):
            return jsonify({"message": "需要 company、number、context 和整数 state（status 可选：polling/shutdown/abort/updateall）"}), 400
        http_status, answer = state.push(company, number, state=state_code, context=context, time=body.get("time"),
                                         area_name=body.get("area_name"), status=status)
        if http_status is None and answer == "该单号未订阅":
            return jsonify({"message": f"{company} {number} 未订阅"}), 404
        ok = http_status == 200 and isinstance(answer, dict) and answer.get("result") is True
        return jsonify({"message": f"已推送，回调应答 HTTP {http_status}", "ok": ok, "answer": answer}), 200 if ok else 502

    @app.post("/_standin/kuaidi100/fail")
    def kuaidi100_fail():
        body = request.get_json(force=True, silent=True) or {}
        code, times = str(body.get("return_code") or ""), body.get("times", 1)
        if code not in RETURN_MESSAGES or code == "200" or type(times) is not int or not 1 <= times <= 100:
            return jsonify({"message": "return_code 应为 500/501/600/601/700/701/702 之一，times 为 1–100"}), 400
        state.fail_next(code, times)
        return jsonify({"return_code": code, "times": times}), 201

    @app.get("/_standin/kuaidi100/subscriptions")
    def kuaidi100_subscriptions():
        return jsonify(state.listing())
