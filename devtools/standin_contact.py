"""The stand-in's WeCom customer contact (客户联系) side: customer groups, enterprise group
messages to groups (企业群发) and temporary media.

WeCom routes (token from /cgi-bin/gettoken, checked like the other WeCom routes):
    POST /cgi-bin/externalcontact/groupchat/list        groups by owner (status_filter, owner_filter, cursor, limit)
    POST /cgi-bin/externalcontact/groupchat/get         one group (chat_id, need_name)
    POST /cgi-bin/externalcontact/add_msg_template      a task for the sender -> msgid, fail_list
    POST /cgi-bin/externalcontact/get_groupmsg_task     per sender: status 0 未发送 / 2 已发送
    POST /cgi-bin/externalcontact/get_groupmsg_send_result   per group: 1 sent, 2 not a friend, 3 over the monthly limit
    POST /cgi-bin/externalcontact/get_groupmsg_list_v2  group messages created in a time window
    POST /cgi-bin/externalcontact/cancel_groupmsg_send  stop a task (sent messages stay sent)
    POST /cgi-bin/externalcontact/remind_groupmsg_send  re-notify the sender (3 times in 24 h)
    POST /cgi-bin/media/upload?type=image               temporary material -> media_id
Control routes (what the rep does in the WeCom client, and test setup):
    POST /_standin/wecom/groups                {name, owner, external_members, chat_id?}: a new customer group
    POST /_standin/wecom/groups/<chat_id>/dismiss
    GET  /_standin/wecom/groupmsg              tasks (JSON; ?format=html for the index page)
    POST /_standin/wecom/groupmsg/confirm      {msgid, userid, skip: [chat_id], not_friend: [chat_id]}:
                                               the rep taps 发送 in 群发助手

The monthly limit is WeCom's documented one: a customer group receives at most as many group
messages a month as the month has days (`set_monthly_limit` changes it, as a corp can in 群发助手
settings). A group over it is reported by get_groupmsg_send_result with status 3 (因客户已经收到
其他群发消息导致发送失败), which is how WeCom documents the outcome.
Where a rule exists but its errcode is not documented the stand-in answers 40058
("invalid Request Parameter"), as the rest of the stand-in does.
"""
import calendar
import html
import json
import secrets
import threading

from flask import jsonify, request

from app.kernel import clock

ERRCODE_USER_NOT_FOUND = 60111  # WeCom: "userid not found"
TEXT_MAX_BYTES = 4000
MAX_ATTACHMENTS = 9
MAX_CHATS = 2000
ATTACHMENT_TYPES = ("image", "link", "miniprogram", "video", "file")
MEDIA_MAX_BYTES = {"image": 10 * 1024 * 1024, "voice": 2 * 1024 * 1024, "video": 10 * 1024 * 1024,
                   "file": 20 * 1024 * 1024}
MEDIA_TTL_SECONDS = 3 * 86400
REMINDS_PER_DAY = 3


class ContactState:
    """Customer groups, group-message tasks, monthly counts and media; all access under the lock."""

    def __init__(self):
        self._lock = threading.Lock()
        self.monthly_limit = None  # None: the month's number of days (WeCom's default)
        self.reset()

    def reset(self):
        with self._lock:
            self._groups = {}  # chat_id -> dict
            self._tasks = {}  # msgid -> dict
            self._monthly = {}  # (chat_id, "YYYY-MM") -> messages received
            self._media = {}  # media_id -> expires_at
            self.monthly_limit = None

    # --- groups -------------------------------------------------------------------------

    def add_group(self, *, name, owner, external_members=3, chat_id=None, owner_status=0, create_time=None):
        chat_id = chat_id or "wr" + secrets.token_urlsafe(20)[:26]
        now = int(create_time or clock.timestamp())
        members = [{"userid": owner, "type": 1, "join_time": now, "join_scene": 1, "name": owner}]
        for n in range(int(external_members)):
            members.append({"userid": "wm" + secrets.token_urlsafe(18)[:24], "type": 2, "join_time": now,
                            "join_scene": 3, "name": f"客户{n + 1}"})
        with self._lock:
            self._groups[chat_id] = {"chat_id": chat_id, "name": name, "owner": owner, "create_time": now,
                                     "notice": "", "member_list": members, "admin_list": [],
                                     "status": int(owner_status), "dismissed": False}
        return chat_id

    def dismiss(self, chat_id):
        with self._lock:
            if chat_id not in self._groups:
                return False
            self._groups[chat_id]["dismissed"] = True
            return True

    def groups_of(self, owners, status_filter):
        with self._lock:
            return [
                {"chat_id": g["chat_id"], "status": g["status"]}
                for g in self._groups.values()
                if not g["dismissed"] and g["owner"] in owners and (status_filter == 0 or g["status"] == status_filter)
            ]

    def group(self, chat_id):
        with self._lock:
            g = self._groups.get(chat_id)
            return None if g is None or g["dismissed"] else json.loads(json.dumps(g))

    def owners(self):
        with self._lock:
            return {g["owner"] for g in self._groups.values()}

    # --- the monthly limit ----------------------------------------------------------------

    def limit_now(self):
        if self.monthly_limit is not None:
            return self.monthly_limit
        now = clock.china_now()
        return calendar.monthrange(now.year, now.month)[1]

    def received_this_month(self, chat_id):
        with self._lock:
            return self._monthly.get((chat_id, clock.china_now().strftime("%Y-%m")), 0)

    # --- tasks ------------------------------------------------------------------------------

    def create_task(self, sender, chat_ids, body):
        msgid = "msg" + secrets.token_urlsafe(24)[:30]
        with self._lock:
            self._tasks[msgid] = {"msgid": msgid, "sender": sender, "chat_ids": list(chat_ids), "body": body,
                                  "created_at": int(clock.timestamp()), "status": 0, "send_time": None,
                                  "cancelled": False, "results": {}, "reminds": []}
        return msgid

    def task(self, msgid):
        with self._lock:
            task = self._tasks.get(msgid)
            return None if task is None else json.loads(json.dumps(task))

    def tasks(self):
        with self._lock:
            return [json.loads(json.dumps(t)) for t in self._tasks.values()]

    def cancel(self, msgid):
        with self._lock:
            task = self._tasks.get(msgid)
            if task is None:
                return False
            task["cancelled"] = True
            return True

    def remind(self, msgid):
        """False when the task was already reminded 3 times in the last 24 hours."""
        now = clock.timestamp()
        with self._lock:
            task = self._tasks[msgid]
            task["reminds"] = [t for t in task["reminds"] if t > now - 86400]
            if len(task["reminds"]) >= REMINDS_PER_DAY:
                return False
            task["reminds"].append(now)
            return True

    def confirm(self, msgid, userid, skip=(), not_friend=()):
        """The rep sends the task from 群发助手: (ok, message). Each chosen group receives it
        unless it is over this month's limit (status 3) or the scripted `not_friend` (status 2)."""
        now = int(clock.timestamp())
        month = clock.china_now().strftime("%Y-%m")
        limit = self.limit_now()
        with self._lock:
            task = self._tasks.get(msgid)
            if task is None or task["sender"] != userid:
                return False, "没有这个业务员的群发任务"
            if task["cancelled"]:
                return False, "该群发已被企业停止，无法发送"
            if task["status"] == 2:
                return False, "该群发已经发送过了"
            for chat_id in task["chat_ids"]:
                if chat_id in skip:
                    continue
                if chat_id in not_friend:
                    task["results"][chat_id] = {"status": 2, "send_time": None}
                    continue
                key = (chat_id, month)
                if self._monthly.get(key, 0) >= limit:
                    task["results"][chat_id] = {"status": 3, "send_time": None}
                    continue
                self._monthly[key] = self._monthly.get(key, 0) + 1
                task["results"][chat_id] = {"status": 1, "send_time": now}
            task["status"], task["send_time"] = 2, now
            sent = sum(1 for r in task["results"].values() if r["status"] == 1)
        return True, f"已发送到 {sent} 个客户群"

    # --- media ----------------------------------------------------------------------------

    def add_media(self):
        media_id = "3" + secrets.token_urlsafe(40)
        with self._lock:
            self._media[media_id] = clock.timestamp() + MEDIA_TTL_SECONDS
        return media_id

    def media_valid(self, media_id):
        with self._lock:
            return self._media.get(media_id, 0) > clock.timestamp()


def _attachment_error(attachment, state):
    """None, or the errmsg for an attachment that does not follow add_msg_template's document."""
    if not isinstance(attachment, dict) or attachment.get("msgtype") not in ATTACHMENT_TYPES:
        return "attachments.msgtype invalid"
    kind = attachment["msgtype"]
    content = attachment.get(kind)
    if not isinstance(content, dict):
        return f"attachments.{kind} missing"
    if kind == "image":
        if not (content.get("media_id") and state.media_valid(content["media_id"])) and not content.get("pic_url"):
            return "attachments.image.media_id invalid"
    elif kind == "link":
        if not content.get("title") or not content.get("url"):
            return "attachments.link.title/url missing"
        if len(content["title"].encode()) > 128 or len((content.get("desc") or "").encode()) > 512:
            return "attachments.link too long"
    elif kind == "miniprogram":
        for key in ("title", "pic_media_id", "appid", "page"):
            if not content.get(key):
                return f"attachments.miniprogram.{key} missing"
        if len(content["title"].encode()) > 64:
            return "attachments.miniprogram.title too long"
        if not state.media_valid(content["pic_media_id"]):
            return "attachments.miniprogram.pic_media_id invalid"
    elif not (content.get("media_id") and state.media_valid(content["media_id"])):
        return f"attachments.{kind}.media_id invalid"
    return None


def register_contact_routes(app, state, contact, error, ok, json_body, deliver):
    """Add the customer contact routes to the stand-in app. `state` is the main StandinState
    (tokens, known users), `contact` the ContactState; the helpers are the stand-in's own."""

    def checked():
        errcode = state.check_token(request.args.get("access_token"), "wecom")
        if errcode:
            return None, error(errcode)
        body = json_body()
        if body is None:
            return None, error(44002)
        return body, None

    @app.post("/cgi-bin/externalcontact/groupchat/list")
    def groupchat_list():
        body, problem = checked()
        if problem:
            return problem
        owners = (body.get("owner_filter") or {}).get("userid_list")
        limit = body.get("limit", 1000)
        if owners is not None and (not isinstance(owners, list) or len(owners) > 100):
            return error(40058, "owner_filter.userid_list invalid (at most 100)")
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            return error(40058, "limit invalid (1 ~ 1000)")
        status_filter = body.get("status_filter", 0)
        if status_filter not in (0, 1, 2, 3):
            return error(40058, "status_filter invalid")
        chats = contact.groups_of(set(owners) if owners is not None else contact.owners(), status_filter)
        chats.sort(key=lambda c: c["chat_id"])
        cursor = body.get("cursor") or "0"
        start = int(cursor) if str(cursor).isdigit() else 0
        page = chats[start:start + limit]
        next_cursor = str(start + limit) if start + limit < len(chats) else ""
        return ok(group_chat_list=page, next_cursor=next_cursor)

    @app.post("/cgi-bin/externalcontact/groupchat/get")
    def groupchat_get():
        body, problem = checked()
        if problem:
            return problem
        group = contact.group(str(body.get("chat_id") or ""))
        if group is None:
            return error(40058, "chat_id invalid")  # errcode for an unknown chat_id is undocumented
        if body.get("need_name") != 1:
            for member in group["member_list"]:
                member.pop("name", None)
        for key in ("status", "dismissed"):
            group.pop(key)
        group["member_version"] = secrets.token_hex(16)
        return ok(group_chat=group)

    @app.post("/cgi-bin/externalcontact/add_msg_template")
    def add_msg_template():
        body, problem = checked()
        if problem:
            return problem
        if body.get("chat_type") != "group":
            return error(40058, "chat_type: the stand-in speaks group messages to customer groups only")
        sender = body.get("sender")
        if not isinstance(sender, str) or not sender:
            return error(40058, "sender is required when chat_type is group")
        if state.is_invalid(sender) or sender not in contact.owners():
            return error(ERRCODE_USER_NOT_FOUND, "userid not found")
        text = (body.get("text") or {}).get("content") or ""
        attachments = body.get("attachments") or []
        if not text and not attachments:
            return error(40058, "text and attachments cannot both be empty")
        if len(text.encode("utf-8")) > TEXT_MAX_BYTES:
            return error(40058, f"text.content exceed max length {TEXT_MAX_BYTES}")
        if not isinstance(attachments, list) or len(attachments) > MAX_ATTACHMENTS:
            return error(40058, f"attachments at most {MAX_ATTACHMENTS}")
        for attachment in attachments:
            problem = _attachment_error(attachment, contact)
            if problem:
                return error(40058, problem)
        chat_ids = body.get("chat_id_list") or []
        if not isinstance(chat_ids, list) or len(chat_ids) > MAX_CHATS:
            return error(40058, f"chat_id_list at most {MAX_CHATS}")
        # Documented as the ids that cannot be sent to; here: groups the sender does not own.
        fail_list = [c for c in chat_ids if (contact.group(c) or {}).get("owner") != sender]
        usable = [c for c in chat_ids if c not in fail_list]
        msgid = contact.create_task(sender, usable, body)
        deliver("wecom_groupmsg", sender, body, msgid=msgid)
        return ok(fail_list=fail_list, msgid=msgid)

    def task_or_error(body):
        task = contact.task(str(body.get("msgid") or ""))
        if task is None:
            return None, error(40058, "msgid invalid")
        return task, None

    @app.post("/cgi-bin/externalcontact/get_groupmsg_task")
    def get_groupmsg_task():
        body, problem = checked()
        if problem:
            return problem
        task, problem = task_or_error(body)
        if problem:
            return problem
        entry = {"userid": task["sender"], "status": task["status"]}
        if task["send_time"]:
            entry["send_time"] = task["send_time"]
        return ok(next_cursor="", task_list=[entry])

    @app.post("/cgi-bin/externalcontact/get_groupmsg_send_result")
    def get_groupmsg_send_result():
        body, problem = checked()
        if problem:
            return problem
        task, problem = task_or_error(body)
        if problem:
            return problem
        if body.get("userid") != task["sender"]:
            return ok(next_cursor="", send_list=[])
        # Documented: for group messages only the records of groups sent to are returned.
        send_list = []
        for chat_id, result in task["results"].items():
            entry = {"chat_id": chat_id, "userid": task["sender"], "status": result["status"]}
            if result["status"] == 1:
                entry["send_time"] = result["send_time"]
            send_list.append(entry)
        return ok(next_cursor="", send_list=send_list)

    @app.post("/cgi-bin/externalcontact/get_groupmsg_list_v2")
    def get_groupmsg_list_v2():
        body, problem = checked()
        if problem:
            return problem
        start, end = body.get("start_time"), body.get("end_time")
        if not isinstance(start, int) or not isinstance(end, int) or not 0 <= end - start <= 31 * 86400:
            return error(40058, "start_time/end_time invalid (at most one month apart)")
        limit = body.get("limit", 50)
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            limit = 50  # documented: above the maximum the default applies
        if body.get("chat_type", "single") != "group" or body.get("filter_type", 2) not in (0, 2):
            return ok(next_cursor="", group_msg_list=[])  # the stand-in only holds enterprise group messages
        found = sorted((t for t in contact.tasks() if start <= t["created_at"] <= end), key=lambda t: t["created_at"])
        cursor = body.get("cursor") or "0"
        offset = int(cursor) if str(cursor).isdigit() else 0
        page = found[offset:offset + limit]
        items = [{"msgid": t["msgid"], "create_time": str(t["created_at"]), "create_type": 0,
                  "text": t["body"].get("text") or {}, "attachments": t["body"].get("attachments") or []}
                 for t in page]  # API-created messages carry no `creator` (documented)
        return ok(next_cursor=str(offset + limit) if offset + limit < len(found) else "", group_msg_list=items)

    @app.post("/cgi-bin/externalcontact/cancel_groupmsg_send")
    def cancel_groupmsg_send():
        body, problem = checked()
        if problem:
            return problem
        task, problem = task_or_error(body)
        if problem:
            return problem
        contact.cancel(task["msgid"])  # what was sent stays sent: WeCom cannot recall it
        return ok()

    @app.post("/cgi-bin/externalcontact/remind_groupmsg_send")
    def remind_groupmsg_send():
        body, problem = checked()
        if problem:
            return problem
        task, problem = task_or_error(body)
        if problem:
            return problem
        if not contact.remind(task["msgid"]):
            return error(40058, "remind at most 3 times in 24 hours")
        return ok()

    @app.post("/cgi-bin/media/upload")
    def media_upload():
        errcode = state.check_token(request.args.get("access_token"), "wecom")
        if errcode:
            return error(errcode)
        media_type = request.args.get("type")
        if media_type not in MEDIA_MAX_BYTES:
            return error(40004, "invalid media type")
        upload = request.files.get("media")
        if upload is None:
            return error(41006, "media_id missing")
        data = upload.read()
        if len(data) <= 5:
            return error(40005, "invalid file type")
        if len(data) > MEDIA_MAX_BYTES[media_type]:
            return error(40006, "invalid file size")
        return jsonify({"errcode": 0, "errmsg": "", "type": media_type, "media_id": contact.add_media(),
                        "created_at": str(int(clock.timestamp()))})

    # --- control: the rep in the WeCom client, and test setup ---------------------------------

    @app.post("/_standin/wecom/groups")
    def add_group():
        data = request.get_json(force=True, silent=True) or {}
        if not data.get("name") or not data.get("owner"):
            return jsonify({"message": "需要群名 name 和群主 owner"}), 400
        chat_id = contact.add_group(name=str(data["name"]), owner=str(data["owner"]),
                                    external_members=int(data.get("external_members", 3)),
                                    chat_id=data.get("chat_id"), owner_status=int(data.get("owner_status", 0)))
        return jsonify({"chat_id": chat_id}), 201

    @app.post("/_standin/wecom/groups/<chat_id>/dismiss")
    def dismiss_group(chat_id):
        if not contact.dismiss(chat_id):
            return jsonify({"message": "没有这个客户群"}), 404
        return jsonify({"message": "已解散"})

    @app.get("/_standin/wecom/groupmsg")
    def group_tasks():
        tasks = contact.tasks()
        if request.args.get("format") == "html":
            return tasks_html(tasks, contact)
        return jsonify(tasks)

    @app.post("/_standin/wecom/groupmsg/confirm")
    def confirm_task():
        data = request.get_json(force=True, silent=True) or {}
        done, message = contact.confirm(str(data.get("msgid") or ""), str(data.get("userid") or ""),
                                        skip=set(data.get("skip") or ()), not_friend=set(data.get("not_friend") or ()))
        return jsonify({"message": message}), 200 if done else 409


STATUS_WORDS = {0: "未发送", 1: "已确认", 2: "已发送"}


def tasks_html(tasks, contact):
    """The index page's list of group-message tasks, with a 发送 button per unsent task."""
    if not tasks:
        return "<p>还没有客户群群发任务。</p>"
    rows = []
    for task in reversed(tasks[-30:]):
        names = "、".join(html.escape((contact.group(c) or {}).get("name") or c) for c in task["chat_ids"])
        text = html.escape(((task["body"].get("text") or {}).get("content") or "")[:60])
        state = "已停止" if task["cancelled"] else STATUS_WORDS.get(task["status"], "")
        button = "" if task["status"] == 2 or task["cancelled"] else (
            "<button onclick='confirmTask({}, {})'>以业务员身份发送</button>".format(
                html.escape(json.dumps(task["msgid"])), html.escape(json.dumps(task["sender"]))))
        rows.append(f"<tr><td>{html.escape(task['sender'])}</td><td>{text}</td><td>{names}</td>"
                    f"<td>{state} {button}</td></tr>")
    return "<table><tr><th>发送人</th><th>内容</th><th>客户群</th><th>状态</th></tr>" + "".join(rows) + "</table>"
