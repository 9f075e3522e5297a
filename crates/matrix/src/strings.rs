//! Every text a person sees from the bot, in English and Russian. Nothing else in the code
//! writes person-facing words.
//!
//! The texts are Markdown. Anything a person supplied (a chat name, a command word, an
//! argument) goes in through [`shown`], so it shows as text, never as markup.

use crate::command::ParseError;
use crate::config::Lang;
use crate::render::escape_markdown;
use lambda_matrix_core::name::is_hidden;
use lambda_matrix_core::{Chat, ChatId, ChatStatus, NameError, MAX_NAME_CHARS};

/// Text a person supplied, ready to put into a notice: invisible and direction-changing
/// characters dropped, whitespace and control characters as single spaces, and every Markdown
/// character escaped.
pub fn shown(text: &str) -> String {
    let visible: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .map(|word| word.chars().filter(|c| !is_hidden(*c)).collect::<String>())
        .filter(|word| !word.is_empty())
        .collect();
    escape_markdown(&visible.join(" "))
}

/// The bot's texts in one language.
#[derive(Clone, Copy, Debug)]
pub struct Texts {
    lang: Lang,
}

impl Texts {
    /// Texts in `lang`.
    pub fn new(lang: Lang) -> Self {
        Texts { lang }
    }

    fn pick(&self, en: &str, ru: &str) -> String {
        match self.lang {
            Lang::En => en.to_owned(),
            Lang::Ru => ru.to_owned(),
        }
    }

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
             - `!delete [C<n>]` — delete this chat or chat C<n> (I ask you to confirm first)\n\
             - `!forget-me` — erase everything I hold about you and leave your rooms (I ask first)\n\
             - `!help` — this list\n\n\
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
             - `!delete [C<n>]` — удалить этот чат или чат C<n> (сначала я попрошу подтвердить)\n\
             - `!forget-me` — стереть всё, что я о вас храню, и выйти из ваших комнат (сначала спрошу)\n\
             - `!help` — этот список\n\n\
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

    /// A non-text message.
    pub fn text_only(&self) -> String {
        self.pick(
            "I understand text only for now.",
            "Пока я понимаю только текст.",
        )
    }

    /// An attachment over `MATRIX_MAX_ATTACHMENT_BYTES`, of `size` if known (a download
    /// stopped at the bound does not know it).
    pub fn attachment_too_big(&self, size: Option<u64>, max: u64) -> String {
        let max = self.size(max);
        match (self.lang, size.map(|size| self.size(size))) {
            (Lang::En, Some(size)) => {
                format!("This file is too big for me: {size}; the largest I take is {max}.")
            }
            (Lang::En, None) => {
                format!("This file is too big for me: the largest I take is {max}.")
            }
            (Lang::Ru, Some(size)) => {
                format!("Этот файл слишком большой для меня: {size}; я принимаю не больше {max}.")
            }
            (Lang::Ru, None) => {
                format!("Этот файл слишком большой для меня: я принимаю не больше {max}.")
            }
        }
    }

    /// A size in bytes, for a person.
    fn size(&self, bytes: u64) -> String {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * 1024;
        let (en, ru) = if bytes >= MIB {
            let mib = format!("{:.1}", bytes as f64 / MIB as f64);
            (format!("{mib} MB"), format!("{} МБ", mib.replace('.', ",")))
        } else if bytes >= KIB {
            let kib = bytes.div_ceil(KIB);
            (format!("{kib} KB"), format!("{kib} КБ"))
        } else {
            (format!("{bytes} bytes"), format!("{bytes} байт"))
        };
        self.pick(&en, &ru)
    }

    /// An attachment event without a usable media URL.
    pub fn attachment_missing(&self) -> String {
        self.pick(
            "This message has no file I can fetch (its link is missing or broken). Please send the file again.",
            "В этом сообщении нет файла, который я могу получить (ссылка отсутствует или неверна). Пожалуйста, отправьте файл ещё раз.",
        )
    }

    /// The media repository (or the server the file is on) did not deliver an attachment.
    pub fn attachment_unreachable(&self) -> String {
        self.pick(
            "I could not fetch this file from the server. Please try again later or send it again.",
            "Не удалось получить этот файл с сервера. Попробуйте позже или отправьте его ещё раз.",
        )
    }

    /// A video.
    pub fn cannot_watch_videos(&self) -> String {
        self.pick(
            "I can't watch videos. Send a picture, a voice message, a text file or text instead.",
            "Я не умею смотреть видео. Пришлите картинку, голосовое сообщение, текстовый файл или текст.",
        )
    }

    /// An image for a platform that cannot see.
    pub fn cannot_see_images(&self) -> String {
        self.pick(
            "This model can't read images. Please describe it in text.",
            "Эта модель не умеет читать картинки. Пожалуйста, опишите её текстом.",
        )
    }

    /// Audio or a voice message for a platform that cannot listen.
    pub fn cannot_hear_audio(&self) -> String {
        self.pick(
            "This model can't listen to audio or voice messages. Please write it as text.",
            "Эта модель не умеет слушать аудио и голосовые сообщения. Пожалуйста, напишите текстом.",
        )
    }

    /// A file of a type the platform cannot read (PDF, archives, binaries, …).
    pub fn cannot_read_file_type(&self) -> String {
        self.pick(
            "I can't read this kind of file. Text files (plain text, Markdown, CSV, JSON, source code) work; PDF and other documents don't yet.",
            "Я не умею читать такие файлы. Текстовые файлы (обычный текст, Markdown, CSV, JSON, код) подходят; PDF и другие документы пока нет.",
        )
    }

    /// A message the bot could not decrypt.
    pub fn could_not_decrypt(&self) -> String {
        self.pick(
            "I could not decrypt this message (I do not have its keys). Please send it again.",
            "Не удалось расшифровать это сообщение (у меня нет его ключей). Пожалуйста, отправьте его ещё раз.",
        )
    }

    /// A plain message in the direct chat.
    pub fn dm_hint(&self) -> String {
        self.pick(
            "Write in one of your chat rooms to talk, or use a command here. `!help` lists them.",
            "Пишите в комнатах чатов, а здесь — команды. `!help` покажет их.",
        )
    }

    /// The platform failed.
    pub fn platform_failed(&self) -> String {
        self.pick(
            "Sorry, I could not answer that just now. Please try again.",
            "Извините, сейчас не получилось ответить. Попробуйте ещё раз.",
        )
    }

    /// The platform took too long.
    pub fn platform_timeout(&self) -> String {
        self.pick(
            "Sorry, that took too long and I gave up. Please try again.",
            "Извините, ответ занял слишком много времени. Попробуйте ещё раз.",
        )
    }

    /// A command needs a chat id here (not given in a chat room).
    pub fn needs_chat_id(&self, example: &str) -> String {
        match self.lang {
            Lang::En => format!("Which chat? Here, name it: `{example}`."),
            Lang::Ru => format!("Какой чат? Здесь укажите его: `{example}`."),
        }
    }

    /// No such chat of the speaker.
    pub fn no_such_chat(&self, id: ChatId) -> String {
        match self.lang {
            Lang::En => format!("You have no chat {id}. `!chats` lists yours."),
            Lang::Ru => format!("У вас нет чата {id}. `!chats` покажет ваши чаты."),
        }
    }

    /// Archiving an archived chat.
    pub fn already_archived(&self, id: ChatId) -> String {
        match self.lang {
            Lang::En => format!("{id} is already archived."),
            Lang::Ru => format!("Чат {id} уже в архиве."),
        }
    }

    /// Unarchiving an active chat.
    pub fn not_archived(&self, id: ChatId) -> String {
        match self.lang {
            Lang::En => format!("{id} is not archived."),
            Lang::Ru => format!("Чат {id} не в архиве."),
        }
    }

    /// Too many chats.
    pub fn too_many_chats(&self, max: u32) -> String {
        match self.lang {
            Lang::En => format!("You have reached the limit of {max} chats. Archive is not deletion, so this counts archived chats too."),
            Lang::Ru => format!("Достигнут предел в {max} чатов (архивные тоже считаются)."),
        }
    }

    /// A message over `MATRIX_MAX_MESSAGES_PER_MINUTE` (`max`): not answered.
    pub fn too_many_messages(&self, max: u32) -> String {
        match self.lang {
            Lang::En => format!(
                "You are writing faster than {max} messages a minute, so this one was not answered. Please wait a moment and send it again."
            ),
            Lang::Ru => format!(
                "Вы пишете чаще {max} сообщений в минуту, поэтому на это я не ответил. Подождите немного и отправьте его ещё раз."
            ),
        }
    }

    /// A direct chat over `MATRIX_MAX_DMS_PER_USER` (`max`): the bot leaves it.
    pub fn too_many_dms(&self, max: u32) -> String {
        match self.lang {
            Lang::En => format!(
                "You already have {max} direct chats with me, so I am leaving this one. Write to me in one of the others."
            ),
            Lang::Ru => format!(
                "У вас уже {max} личных чатов со мной, поэтому из этого я выхожу. Пишите мне в одном из других."
            ),
        }
    }

    /// Said once to a person removed from `MATRIX_ALLOWED_USERS`; then the bot is silent.
    pub fn no_longer_allowed(&self) -> String {
        self.pick(
            "You no longer have access to this bot, so I will not answer here. Your chats are kept; ask the operator if you think this is a mistake.",
            "У вас больше нет доступа к этому боту, поэтому здесь я отвечать не буду. Ваши чаты сохранены; если это ошибка, обратитесь к администратору.",
        )
    }

    /// Too many new chats too fast.
    pub fn slow_down(&self, max: u32) -> String {
        match self.lang {
            Lang::En => {
                format!("At most {max} new chats per minute. Please wait a moment and try again.")
            }
            Lang::Ru => {
                format!("Не больше {max} новых чатов в минуту. Подождите немного и повторите.")
            }
        }
    }

    /// The person has no Space (yet): nothing to act on.
    pub fn no_space(&self) -> String {
        self.pick(
            "I have no space for you yet. Invite me to a direct chat to get started.",
            "У меня ещё нет пространства для вас. Пригласите меня в личный чат, чтобы начать.",
        )
    }

    /// The room is not one the bot can place.
    pub fn unknown_room(&self) -> String {
        self.pick(
            "I do not know this room. Use your direct chat with me or one of your chat rooms.",
            "Я не знаю эту комнату. Пишите мне в личном чате или в комнатах ваших чатов.",
        )
    }

    /// Something failed on the bot's side while doing a command.
    pub fn command_failed(&self) -> String {
        self.pick(
            "Sorry, that did not work because of a problem on my side. Please try again in a moment.",
            "Извините, не получилось из-за проблемы на моей стороне. Попробуйте чуть позже.",
        )
    }

    /// `!delete` without `confirm`: what will happen and how to go ahead.
    pub fn delete_ask(&self, chat: &Chat) -> String {
        match self.lang {
            Lang::En => format!(
                "This deletes {} **{}**: I remove it from your space, leave the room and forget \
                 it. The room and its messages stay with you. To go ahead, send `!delete {} confirm`.",
                chat.id, shown(&chat.name), chat.id
            ),
            Lang::Ru => format!(
                "Это удалит чат {} **{}**: я уберу его из пространства, выйду из комнаты и забуду её. \
                 Комната и сообщения останутся у вас. Чтобы продолжить, отправьте `!delete {} confirm`.",
                chat.id, shown(&chat.name), chat.id
            ),
        }
    }

    /// A chat was deleted (said before the bot leaves it).
    pub fn deleted(&self, chat: &Chat) -> String {
        match self.lang {
            Lang::En => format!(
                "Deleted {} **{}**: it is out of your space and I am leaving the room now.",
                chat.id,
                shown(&chat.name)
            ),
            Lang::Ru => format!(
                "Чат {} **{}** удалён: он убран из пространства, и я выхожу из комнаты.",
                chat.id,
                shown(&chat.name)
            ),
        }
    }

    /// `!forget-me` without `confirm`.
    pub fn forget_ask(&self, chats: usize) -> String {
        match self.lang {
            Lang::En => format!(
                "This erases everything I hold about you: your space, your {chats} chat(s) and our \
                 direct chat. I leave all of them; the rooms and messages stay with you. If you \
                 write to me again later, you start from scratch. To go ahead, send \
                 `!forget-me confirm`."
            ),
            Lang::Ru => format!(
                "Это сотрёт всё, что я о вас храню: пространство, ваши чаты ({chats}) и наш личный \
                 чат. Я выйду из всех этих комнат; комнаты и сообщения останутся у вас. Если \
                 напишете мне снова, всё начнётся с нуля. Чтобы продолжить, отправьте \
                 `!forget-me confirm`."
            ),
        }
    }

    /// `!forget-me confirm` (said before the bot leaves).
    pub fn forgotten(&self) -> String {
        self.pick(
            "Done: I erased what I held about you and I am leaving your rooms now. Goodbye!",
            "Готово: я стёр всё, что хранил о вас, и выхожу из ваших комнат. До свидания!",
        )
    }

    /// The reply to a message whose answer `!cancel` stopped.
    pub fn answer_cancelled(&self) -> String {
        self.pick(
            "Stopped: you cancelled this answer.",
            "Остановлено: вы отменили этот ответ.",
        )
    }

    /// `!cancel` stopped `n` pending answers.
    pub fn cancel_done(&self, n: usize) -> String {
        match self.lang {
            Lang::En => format!("Cancelled {n} pending answer(s)."),
            Lang::Ru => format!("Отменено ответов: {n}."),
        }
    }

    /// `!cancel` with nothing pending.
    pub fn nothing_to_cancel(&self) -> String {
        self.pick(
            "Nothing to cancel: I am not working on an answer here.",
            "Отменять нечего: я сейчас ничего здесь не отвечаю.",
        )
    }

    /// The first line of a fresh answer to a message edited after it was answered.
    pub fn edited_answer_heading(&self) -> String {
        self.pick(
            "*Answer to your edited message:*",
            "*Ответ на исправленное сообщение:*",
        )
    }

    /// The platform is rate limiting.
    pub fn platform_busy(&self) -> String {
        self.pick(
            "Sorry, the answering service is busy right now. Please try again in a minute.",
            "Извините, сервис ответов сейчас перегружен. Попробуйте через минуту.",
        )
    }

    /// The platform refused the request (its settings are wrong).
    pub fn platform_misconfigured(&self) -> String {
        self.pick(
            "Sorry, I cannot answer: the answering service refused my request. The bot's operator has to fix its settings.",
            "Извините, не могу ответить: сервис ответов отклонил запрос. Оператору бота нужно исправить настройки.",
        )
    }

    /// The platform could not be reached.
    pub fn platform_unavailable(&self) -> String {
        self.pick(
            "Sorry, the answering service is unavailable right now. Please try again later.",
            "Извините, сервис ответов сейчас недоступен. Попробуйте позже.",
        )
    }

    /// The mark on a streamed answer that is still being written.
    pub fn answer_in_progress(&self) -> String {
        self.pick("*…still writing*", "*…ещё пишу*")
    }

    /// The mark on a streamed answer that was cut off (a crash or a failure mid-answer).
    pub fn answer_interrupted(&self) -> String {
        self.pick(
            "*(this answer was interrupted; the full answer follows)*",
            "*(этот ответ прервался; полный ответ ниже)*",
        )
    }

    /// The note under an answer cut at `LAMBDA_MAX_ANSWER_CHARS` (`max`).
    pub fn answer_cut(&self, max: usize) -> String {
        match self.lang {
            Lang::En => format!("*(the answer was cut here: it was longer than {max} characters)*"),
            Lang::Ru => format!("*(ответ обрезан здесь: он длиннее {max} символов)*"),
        }
    }

    /// A command that could not be parsed.
    pub fn parse_error(&self, error: &ParseError) -> String {
        match (error, self.lang) {
            (ParseError::Unknown(word), Lang::En) => {
                format!(
                    "I do not know the command !{}. `!help` lists the commands.",
                    shown(word)
                )
            }
            (ParseError::Unknown(word), Lang::Ru) => {
                format!("Не знаю команду !{}. `!help` покажет список.", shown(word))
            }
            (ParseError::MissingArgument(word), Lang::En) => {
                format!("`!{word}` needs more. {}", usage(word, Lang::En))
            }
            (ParseError::MissingArgument(word), Lang::Ru) => {
                format!("`!{word}`: не хватает аргумента. {}", usage(word, Lang::Ru))
            }
            (ParseError::UnexpectedArgument(word @ ("delete" | "forget-me")), lang) => {
                usage(word, lang)
            }
            (ParseError::UnexpectedArgument(word), Lang::En) => {
                format!("`!{word}` takes nothing after it.")
            }
            (ParseError::UnexpectedArgument(word), Lang::Ru) => {
                format!("После `!{word}` ничего не нужно.")
            }
            (ParseError::BadChatId(text), Lang::En) => {
                format!(
                    "{} is not a chat id; they look like C1, C2, ...",
                    shown(text)
                )
            }
            (ParseError::BadChatId(text), Lang::Ru) => {
                format!(
                    "{} — не номер чата; они выглядят как C1, C2, ...",
                    shown(text)
                )
            }
            (ParseError::BadName(NameError::Empty), Lang::En) => "The name is empty.".to_owned(),
            (ParseError::BadName(NameError::Empty), Lang::Ru) => "Название пустое.".to_owned(),
            (ParseError::BadName(NameError::TooLong { chars }), Lang::En) => {
                format!("The name has {chars} characters; at most {MAX_NAME_CHARS} are allowed.")
            }
            (ParseError::BadName(NameError::TooLong { chars }), Lang::Ru) => {
                format!("В названии {chars} символов; можно не больше {MAX_NAME_CHARS}.")
            }
            (ParseError::TooLong, Lang::En) => "That command is too long.".to_owned(),
            (ParseError::TooLong, Lang::Ru) => "Команда слишком длинная.".to_owned(),
        }
    }
}

fn usage(word: &str, lang: Lang) -> String {
    let example = match word {
        "rename" => "`!rename <name>` or `!rename C2 <name>`",
        "unarchive" => "`!unarchive C2`",
        "delete" => "`!delete C2`, then `!delete C2 confirm`",
        "forget-me" => "`!forget-me`, then `!forget-me confirm`",
        _ => "`!help`",
    };
    match lang {
        Lang::En => format!("Usage: {example}."),
        Lang::Ru => format!("Пример: {example}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::render;

    #[test]
    fn default_chat_names_follow_the_language() {
        let c1 = ChatId::FIRST;
        assert_eq!(Texts::new(Lang::En).chat_name(c1), "Chat 1");
        assert_eq!(Texts::new(Lang::Ru).chat_name(c1), "Чат 1");
    }

    /// Every person-facing text, by function name, in `lang`.
    fn every_text(lang: Lang) -> Vec<(&'static str, String)> {
        let t = Texts::new(lang);
        let chat = Chat {
            owner: "@anna:x".into(),
            id: ChatId::FIRST,
            name: "Work".into(),
            status: ChatStatus::Active,
            room_id: "!r:x".into(),
        };
        let id = ChatId::FIRST;
        let mut all = vec![
            ("chat_name", t.chat_name(id)),
            ("space_name", t.space_name()),
            ("space_topic", t.space_topic()),
            ("help", t.help()),
            ("welcome", t.welcome(&chat)),
            ("welcome_back", t.welcome_back()),
            ("created", t.created(&chat)),
            ("chat_list", t.chat_list(std::slice::from_ref(&chat))),
            ("renamed", t.renamed(&chat)),
            ("archived", t.archived(&chat)),
            ("unarchived", t.unarchived(&chat)),
            ("invited_to_chat", t.invited_to_chat(&chat)),
            ("invited_to_space", t.invited_to_space()),
            ("already_member", t.already_member()),
            ("archived_notice", t.archived_notice(id)),
            ("text_only", t.text_only()),
            ("could_not_decrypt", t.could_not_decrypt()),
            ("dm_hint", t.dm_hint()),
            ("platform_failed", t.platform_failed()),
            ("platform_timeout", t.platform_timeout()),
            ("needs_chat_id", t.needs_chat_id("!archive C1")),
            ("no_such_chat", t.no_such_chat(id)),
            ("already_archived", t.already_archived(id)),
            ("not_archived", t.not_archived(id)),
            ("too_many_chats", t.too_many_chats(3)),
            ("slow_down", t.slow_down(3)),
            ("too_many_messages", t.too_many_messages(30)),
            ("too_many_dms", t.too_many_dms(3)),
            ("no_longer_allowed", t.no_longer_allowed()),
            ("no_space", t.no_space()),
            ("unknown_room", t.unknown_room()),
            ("command_failed", t.command_failed()),
            ("delete_ask", t.delete_ask(&chat)),
            ("deleted", t.deleted(&chat)),
            ("forget_ask", t.forget_ask(2)),
            ("forgotten", t.forgotten()),
            ("answer_cancelled", t.answer_cancelled()),
            ("cancel_done", t.cancel_done(1)),
            ("nothing_to_cancel", t.nothing_to_cancel()),
            ("edited_answer_heading", t.edited_answer_heading()),
            ("platform_busy", t.platform_busy()),
            ("platform_misconfigured", t.platform_misconfigured()),
            ("platform_unavailable", t.platform_unavailable()),
            ("answer_in_progress", t.answer_in_progress()),
            ("answer_interrupted", t.answer_interrupted()),
            ("answer_cut", t.answer_cut(64_000)),
            (
                "attachment_too_big",
                t.attachment_too_big(Some(25 << 20), 20 << 20),
            ),
            ("attachment_missing", t.attachment_missing()),
            ("attachment_unreachable", t.attachment_unreachable()),
            ("cannot_watch_videos", t.cannot_watch_videos()),
            ("cannot_see_images", t.cannot_see_images()),
            ("cannot_hear_audio", t.cannot_hear_audio()),
            ("cannot_read_file_type", t.cannot_read_file_type()),
        ];
        let errors = [
            ParseError::Unknown("x".into()),
            ParseError::MissingArgument("rename"),
            ParseError::UnexpectedArgument("help"),
            ParseError::UnexpectedArgument("delete"),
            ParseError::BadChatId("x".into()),
            ParseError::BadName(NameError::Empty),
            ParseError::BadName(NameError::TooLong { chars: 99 }),
            ParseError::TooLong,
        ];
        for error in &errors {
            all.push(("parse_error", t.parse_error(error)));
        }
        all
    }

    #[test]
    fn sizes_are_shown_for_people() {
        let (en, ru) = (Texts::new(Lang::En), Texts::new(Lang::Ru));
        assert_eq!(en.size(512), "512 bytes");
        assert_eq!(en.size(1025), "2 KB");
        assert_eq!(en.size(25 << 20), "25.0 MB");
        assert_eq!(ru.size(3 << 19), "1,5 МБ");
        assert!(en.attachment_too_big(Some(2000), 1000).contains("2 KB"));
        let unknown = en.attachment_too_big(None, 1000);
        assert!(
            unknown.contains("too big")
                && unknown.contains("1000 bytes")
                && !unknown.contains("2 KB"),
            "{unknown}"
        );
        assert!(ru.attachment_too_big(None, 1000).contains("1000"));
    }

    #[test]
    fn every_text_exists_in_both_languages() {
        let (en, ru) = (every_text(Lang::En), every_text(Lang::Ru));
        // The list above names every text function: a new one must be added to it.
        let source = include_str!("strings.rs");
        let impl_body = &source[..source.find("fn usage(").expect("usage")];
        let defined = impl_body.matches("    pub fn ").count() - 1; // `new`
        let listed: std::collections::BTreeSet<_> = en.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            defined,
            listed.len(),
            "a text function is missing from every_text()"
        );
        // Names that are the same word in both languages.
        let same_in_both = ["space_name"];
        for ((name, en), (_, ru)) in en.iter().zip(&ru) {
            assert!(!en.trim().is_empty(), "{name}: English text is empty");
            assert!(!ru.trim().is_empty(), "{name}: Russian text is empty");
            if same_in_both.contains(name) {
                continue;
            }
            assert_ne!(en, ru, "{name}: not translated");
            assert!(
                ru.chars()
                    .any(|c| ('а'..='я').contains(&c.to_lowercase().next().unwrap_or(c))),
                "{name}: the Russian text has no Russian words: {ru}"
            );
            assert!(
                !en.chars().any(|c| ('а'..='я').contains(&c)),
                "{name}: the English text has Russian in it: {en}"
            );
        }
    }

    /// Every tag in the HTML a text renders to (`<p>` for a plain paragraph sent without HTML).
    fn tags(rendered: &crate::render::Rendered) -> Vec<String> {
        let Some(html) = &rendered.html else {
            return vec!["<p>".into(), "</p>".into()];
        };
        // Text in the HTML is escaped, so every `<` opens a tag.
        html.split('<')
            .skip(1)
            .map(|t| format!("<{}>", t.split('>').next().unwrap_or_default()))
            .collect()
    }

    /// What a client shows of a rendered text: the HTML without tags, unescaped.
    fn visible_text(rendered: &crate::render::Rendered) -> String {
        let Some(html) = &rendered.html else {
            return rendered.body.clone();
        };
        let mut text = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    /// Names and words a person could type to smuggle markup into the bot's notices.
    const HOSTILE: &[&str] = &[
        "[x](https://example.org)",
        "**bold**",
        "<b>bold</b>",
        "_em_ ~~gone~~ `code`",
        "# Heading",
        "1. first",
        "- item",
        "> quote",
        "a | b |",
        "![img](https://example.org/i.png)",
        "<https://example.org> https://example.org",
        "&#8238;&amp; \\*",
        "*",
        "**",
        "trailing\\",
        "{x}+!.#",
    ];

    #[test]
    fn a_hostile_chat_name_shows_as_text_in_every_notice() {
        let chat = |name: &str| Chat {
            owner: "@anna:x".into(),
            id: ChatId::FIRST,
            name: name.into(),
            status: ChatStatus::Archived,
            room_id: "!r:x".into(),
        };
        for lang in [Lang::En, Lang::Ru] {
            let t = Texts::new(lang);
            let notices = |chat: &Chat| {
                vec![
                    ("welcome", t.welcome(chat)),
                    ("created", t.created(chat)),
                    ("chat_list", t.chat_list(std::slice::from_ref(chat))),
                    ("renamed", t.renamed(chat)),
                    ("archived", t.archived(chat)),
                    ("unarchived", t.unarchived(chat)),
                    ("invited_to_chat", t.invited_to_chat(chat)),
                    ("delete_ask", t.delete_ask(chat)),
                    ("deleted", t.deleted(chat)),
                ]
            };
            let plain = notices(&chat("Work"));
            for name in HOSTILE {
                for ((what, markdown), (_, harmless)) in notices(&chat(name)).iter().zip(&plain) {
                    let rendered = render(markdown);
                    let html = rendered.html.clone().unwrap_or_default();
                    assert!(!html.contains("<a"), "{what} {name:?}: a link: {html}");
                    assert!(
                        !html.contains("<em>") && !html.contains("<del>"),
                        "{what} {name:?}: {html}"
                    );
                    assert_eq!(
                        tags(&rendered),
                        tags(&render(harmless)),
                        "{what} {name:?}: the name adds no markup (no <strong> of its own): {html}"
                    );
                    let shown = visible_text(&rendered);
                    assert!(
                        shown.contains(name),
                        "{what} {name:?}: the name is not all visible: {shown}"
                    );
                }
            }
        }
    }

    #[test]
    fn unknown_command_words_and_bad_ids_show_as_text() {
        for lang in [Lang::En, Lang::Ru] {
            let t = Texts::new(lang);
            for word in HOSTILE {
                for error in [
                    ParseError::Unknown((*word).into()),
                    ParseError::BadChatId((*word).into()),
                ] {
                    let rendered = render(&t.parse_error(&error));
                    let html = rendered.html.clone().unwrap_or_default();
                    assert!(!html.contains("<a"), "{error:?}: a link: {html}");
                    assert!(!html.contains("<strong>"), "{error:?}: bold: {html}");
                    let harmless = match error {
                        ParseError::Unknown(_) => ParseError::Unknown("frobnicate".into()),
                        _ => ParseError::BadChatId("frobnicate".into()),
                    };
                    assert_eq!(
                        tags(&rendered),
                        tags(&render(&t.parse_error(&harmless))),
                        "{error:?}: {html}"
                    );
                    let shown = visible_text(&rendered);
                    assert!(shown.contains(word), "{error:?}: not all visible: {shown}");
                }
            }
        }
    }

    #[test]
    fn hidden_characters_a_person_typed_are_not_echoed() {
        let t = Texts::new(Lang::En);
        let echoed = t.parse_error(&ParseError::Unknown("ev\u{202E}il\u{200B}\n\n# x".into()));
        assert_eq!(
            echoed,
            "I do not know the command !evil \\# x. `!help` lists the commands."
        );
        assert_eq!(shown("a\n\n  b\u{2066}"), "a b");
    }

    #[test]
    fn help_names_every_command_in_both_languages() {
        for lang in [Lang::En, Lang::Ru] {
            let help = Texts::new(lang).help();
            for cmd in [
                "!new",
                "!chats",
                "!rename",
                "!archive",
                "!unarchive",
                "!invite",
                "!cancel",
                "!delete",
                "!forget-me",
                "!help",
            ] {
                assert!(help.contains(cmd), "{lang:?} help lacks {cmd}");
            }
        }
    }
}
