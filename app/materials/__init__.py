"""Marketing materials (营销物料): images, posters, short videos, files, articles, links and
mini-program page cards that the brand publishes to the dealers of an audience.

One module a purpose: `files` (checking, storing and serving the files), `authoring` (staff
create, edit, publish and withdraw), `reading` (the console's lists and figures), `dealer`
(what a dealer sees and shares) and `attachments` (a material as a campaign attachment,
`campaign_attachment(material_id)`).
"""
