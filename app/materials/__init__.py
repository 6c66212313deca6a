"""Marketing materials (营销物料): images, posters, short videos, files, articles, links and
mini-program page cards that the brand publishes to the dealers of an audience."""
