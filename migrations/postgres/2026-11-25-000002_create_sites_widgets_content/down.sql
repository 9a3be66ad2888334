DROP TABLE content_items;
DROP TABLE chat_widgets;
DROP TABLE sites;
