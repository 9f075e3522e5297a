//! The texts about a person's chats and Space: names, help, welcome, and what the chat
//! commands did.

use super::{shown, Texts};
use crate::config::Lang;
use lambda_matrix_core::{Chat, ChatId, ChatStatus};

impl Texts {
    /// The default name of chat `id` ("Chat 1" / "Чат 1").
    pub fn chat_name(&self, id: ChatId) -> String {
        match self.lang {
            Lang::En => format!("Chat {}", id.number()),
            Lang::Ru => format!("Чат {}", id.number()),
        }
    }

    /// The name of a person's Space.
    pub fn space_name(&self) -> String {
        self.pick("Lambda", "Lambda")
    }

    /// The Space's topic.
    pub fn space_topic(&self) -> String {
        self.pick(
            "Your chats with Lambda. Each room is one conversation.",
            "Ваши чаты с Lambda. Каждая комната — отдельный разговор.",
        )
    }

    /// `!help`: the command list.
    pub fn help(&self) -> String {
        self.pick(
            "**Commands**\n\n\
             - `!new [name]` — start a new chat\n\
             - `!chats` — list your chats\n\
             - `!rename <name>` — rename this chat; `!rename C<n> <name>` — rename chat C<n>\n\
             - `!archive [C<n>]` — archive this chat or chat C<n>\n\
             - `!unarchive C<n>` — bring an archived chat back\n\
             - `!invite [C<n>]` — invite you again to a chat, or to your space\n\
             - `!cancel` — stop the answer I am working on in this chat\n\
             - `!model [name]` — list the models, or choose this chat's\n\
             - `!instructions [text | clear]` — show, set or remove this chat's instructions to the model\n\
             - `!settings` — this chat's model and instructions\n\
             - `!usage` — your tokens today and this month, and your budget\n\
             - `!delete [C<n>]` — delete this chat or chat C<n> (I ask you to confirm first)\n\
             - `!forget-me` — erase everything I hold about you and leave your rooms (I ask first)\n\
             - `!help` — this list\n\n\
             React 🛑 to your message or to my answer while I write it to stop it; \
             react 🔁 to a finished answer and I write it again. \
             Write in a chat room to talk; each room is its own conversation. \
             Edit a message before I answer and I answer the edited text; \
             edit it after and I answer again. \
             You can also send pictures, voice messages and files (text, Markdown, CSV, JSON, code), \
             as far as the model can take them.",
            "**Команды**\n\n\
             - `!new [название]` — начать новый чат\n\
             - `!chats` — список ваших чатов\n\
             - `!rename <название>` — переименовать этот чат; `!rename C<n> <название>` — чат C<n>\n\
             - `!archive [C<n>]` — архивировать этот чат или чат C<n>\n\
             - `!unarchive C<n>` — вернуть чат из архива\n\
             - `!invite [C<n>]` — пригласить вас снова в чат или в ваше пространство\n\
             - `!cancel` — остановить ответ, над которым я работаю в этом чате\n\
             - `!model [название]` — список моделей или выбор модели этого чата\n\
             - `!instructions [текст | clear]` — показать, задать или удалить инструкции модели в этом чате\n\
             - `!settings` — модель и инструкции этого чата\n\
             - `!usage` — ваш расход токенов за сегодня и за месяц и ваш лимит\n\
             - `!delete [C<n>]` — удалить этот чат или чат C<n> (сначала я попрошу подтвердить)\n\
             - `!forget-me` — стереть всё, что я о вас храню, и выйти из ваших комнат (сначала спрошу)\n\
             - `!help` — этот список\n\n\
             Реакция 🛑 на ваше сообщение или на мой ответ, пока я его пишу, останавливает его; \
             реакция 🔁 на готовый ответ — я напишу его заново. \
             Пишите в комнате чата; каждая комната — отдельный разговор. \
             Если исправить сообщение до моего ответа, я отвечу на исправленный текст; \
             если после — отвечу ещё раз. \
             Можно присылать и картинки, голосовые сообщения и файлы (текст, Markdown, CSV, JSON, код), \
             если модель умеет их читать.",
        )
    }

    /// The welcome in the direct chat after first contact.
    pub fn welcome(&self, first: &Chat) -> String {
        let intro = match self.lang {
            Lang::En => format!(
                "Hello! I made you a space with your first chat, **{}** ({}). \
                 Accept the invitations, then write there.\n\n",
                shown(&first.name),
                first.id
            ),
            Lang::Ru => format!(
                "Здравствуйте! Я создал для вас пространство с первым чатом **{}** ({}). \
                 Примите приглашения и пишите там.\n\n",
                shown(&first.name),
                first.id
            ),
        };
        format!("{intro}{}", self.help())
    }

    /// Greeting in another direct chat of a person who already has a Space.
    pub fn welcome_back(&self) -> String {
        self.pick(
            "Hello again! You already have your space; `!chats` lists your chats, `!invite` invites you to the space again.",
            "Снова здравствуйте! Ваше пространство уже есть; `!chats` покажет чаты, `!invite` снова пригласит вас в пространство.",
        )
    }

    /// A chat was created.
    pub fn created(&self, chat: &Chat) -> String {
        match self.lang {
            Lang::En => format!(
                "Created {} **{}**. I invited you to it.",
                chat.id,
                shown(&chat.name)
            ),
            Lang::Ru => format!(
                "Создан чат {} **{}**. Я пригласил вас в него.",
                chat.id,
                shown(&chat.name)
            ),
        }
    }

    /// `!chats`.
    pub fn chat_list(&self, chats: &[Chat]) -> String {
        if chats.is_empty() {
            return self.pick(
                "You have no chats yet. `!new` starts one.",
                "Чатов пока нет. `!new` создаст новый.",
            );
        }
        let mut out = self.pick("**Your chats**\n\n", "**Ваши чаты**\n\n");
        for chat in chats {
            let status = match (chat.status, self.lang) {
                (ChatStatus::Active, _) => String::new(),
                (ChatStatus::Archived, Lang::En) => " — archived".to_owned(),
                (ChatStatus::Archived, Lang::Ru) => " — в архиве".to_owned(),
            };
            out.push_str(&format!(
                "- {} **{}**{status}\n",
                chat.id,
                shown(&chat.name)
            ));
        }
        out
    }

    /// A chat was renamed.
    pub fn renamed(&self, chat: &Chat) -> String {
        match self.lang {
            Lang::En => format!("Renamed {} to **{}**.", chat.id, shown(&chat.name)),
            Lang::Ru => format!("Чат {} переименован в **{}**.", chat.id, shown(&chat.name)),
        }
    }

    /// A chat was archived.
    pub fn archived(&self, chat: &Chat) -> String {
        match self.lang {
            Lang::En => format!(
                "Archived {} **{}**. `!unarchive {}` brings it back.",
                chat.id,
                shown(&chat.name),
                chat.id
            ),
            Lang::Ru => format!(
                "Чат {} **{}** в архиве. `!unarchive {}` вернёт его.",
                chat.id,
                shown(&chat.name),
                chat.id
            ),
        }
    }

    /// A chat was unarchived.
    pub fn unarchived(&self, chat: &Chat) -> String {
        match self.lang {
            Lang::En => format!("{} **{}** is active again.", chat.id, shown(&chat.name)),
            Lang::Ru => format!("Чат {} **{}** снова активен.", chat.id, shown(&chat.name)),
        }
    }

    /// The person was invited again to a chat.
    pub fn invited_to_chat(&self, chat: &Chat) -> String {
        match self.lang {
            Lang::En => format!("Invited you to {} **{}**.", chat.id, shown(&chat.name)),
            Lang::Ru => format!("Пригласил вас в чат {} **{}**.", chat.id, shown(&chat.name)),
        }
    }

    /// The person was invited again to their Space.
    pub fn invited_to_space(&self) -> String {
        self.pick(
            "Invited you to your space.",
            "Пригласил вас в ваше пространство.",
        )
    }

    /// Already a member: nothing to invite.
    pub fn already_member(&self) -> String {
        self.pick("You are already in that room.", "Вы уже в этой комнате.")
    }

    /// A message in an archived chat.
    pub fn archived_notice(&self, id: ChatId) -> String {
        match self.lang {
            Lang::En => format!("This chat is archived. Send `!unarchive {id}` to continue it."),
            Lang::Ru => {
                format!("Этот чат в архиве. Отправьте `!unarchive {id}`, чтобы продолжить.")
            }
        }
    }
}
